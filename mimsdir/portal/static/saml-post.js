// SAML's HTTP-POST binding: the page's form goes to the application by itself. An external
// file: the Content-Security-Policy allows no inline script. Without script, its button does.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("saml-post");
  if (form) {
    form.submit();
  }
});
