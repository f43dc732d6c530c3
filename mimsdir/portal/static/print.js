// The slip's print button. An external file: the Content-Security-Policy allows no inline script.
document.addEventListener("DOMContentLoaded", function () {
  var button = document.getElementById("print");
  if (button) {
    button.addEventListener("click", function () { window.print(); });
  }
});
