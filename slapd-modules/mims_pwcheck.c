/* mims_pwcheck: the directory's own password rules, as a ppolicy check module.
 *
 * Why in slapd and not only in the portal: school devices change passwords with an LDAP
 * Password Modify straight to slapd, so a rule that lives only in the portal is no rule.
 * slapd 2.5's ppolicy calls check_password() below for every password that someone who
 * is not a password administrator sets (a student's own change, the SSPR portal's write of
 * the password a student chose), when the policy has pwdCheckQuality > 0 and
 * pwdCheckModule naming this file. A non-zero return refuses the change with
 * constraintViolation / insufficientPasswordQuality, and the text we return is the
 * diagnostic message the client sees.
 *
 * Every refusal text starts with a short, stable code ("mims:common", ...) and a space, then
 * one plain English sentence a child understands (a device shows it as it is). The portal
 * maps the code to its own message in English, Chinese, Malay and Tamil.
 *
 * The password is never logged, copied into a message or kept: slapd logs our message when
 * we refuse, so messages name the rule, never the value.
 *
 * Written for this project (not derived from OpenLDAP's contrib ppm module). Compiled by
 * scripts/bootstrap.sh against the headers of Debian's own openldap source package, so the
 * Entry and Attribute layouts are the installed slapd's. Linked with -z nodelete: ppolicy
 * lt_dlopen()s and lt_dlclose()s the module on every check, and nodelete keeps it (and the
 * deny-list loaded once) in memory between checks. ppolicy calls check_password() under its
 * own mutex, so the cache needs no lock of its own.
 */

#include "portable.h"
#include "slap.h"

/* slapd's proto-slap.h maps free() to its ch_free(); this module uses the C library's own
 * allocator only (ch_free releases with it too), so it references no slapd symbol and can
 * also be loaded by the tests. */
#undef free

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MIMS_MAX_CHARS 64      /* longer is refused, never cut */
#define MIMS_MIN_WORD 3        /* name and ID parts shorter than this are not checked */
#define MIMS_MAX_LINE 256      /* deny-list lines longer than this are ignored */
#define MIMS_MAX_PARTS 64      /* name and login parts checked per entry */

/* Exported for tests (ctypes) and used by check_password(); see below. */
int mims_pwcheck_values(const char *password, const char *const *attr_names,
                        const char *const *attr_values, size_t count,
                        const char *denylist_path, char *msg, size_t msglen);
int check_password(char *pPasswd, char **ppErrStr, Entry *pEntry, struct berval *pArg);

/* -- messages ------------------------------------------------------------------------ */

static const char MSG_LONG[] =
    "mims:long Your password is too long. Use 64 characters or fewer.";
static const char MSG_SPACE[] =
    "mims:space Your password cannot be only spaces. Use letters and numbers.";
static const char MSG_REPEAT[] =
    "mims:repeat Your password repeats the same letters or numbers. Mix different ones.";
static const char MSG_SEQUENCE[] =
    "mims:sequence Your password is a simple run like 12345678 or abcdefgh. "
    "Choose one that is harder to guess.";
static const char MSG_NAME[] =
    "mims:name Your password cannot contain your name.";
static const char MSG_LOGIN[] =
    "mims:login Your password cannot contain your login ID or student ID.";
static const char MSG_SCHOOL[] =
    "mims:school Your password cannot contain your school's name.";
static const char MSG_COMMON[] =
    "mims:common That password is too easy to guess. Choose one that other people do not use.";
static const char MSG_UNAVAILABLE[] =
    "mims:unavailable Passwords cannot be changed right now. Please ask your teacher.";

/* -- small string helpers (ASCII case folding: UTF-8 bytes >= 0x80 are kept as they are) */

static char *lower_dup(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    size_t i;

    if (out == NULL)
        return NULL;
    for (i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[n] = '\0';
    return out;
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

static int is_letter(unsigned char c)
{
    /* Non-ASCII bytes count as letters: names in Chinese or Tamil are words too. */
    return c >= 0x80 || isalpha(c);
}

/* -- patterns ------------------------------------------------------------------------ */

/* Runs an attacker tries first: the alphabet, digits, keyboard rows and columns. */
static const char *const SEQUENCES[] = {
    "abcdefghijklmnopqrstuvwxyz",
    "01234567890",
    "qwertyuiopasdfghjklzxcvbnm",
    "qwertyuiop", "asdfghjkl", "zxcvbnm",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
    "!@#$%^&*()",
    NULL
};

static int is_all_space(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return 0;
    return 1;
}

/* The whole (lower-cased) string is one short unit repeated: aaaa, abab, 123123. */
static int is_repeat(const char *s, size_t n)
{
    size_t unit, i;

    for (unit = 1; unit <= 4 && unit * 2 <= n; unit++) {
        if (n % unit)
            continue;
        for (i = unit; i < n && s[i] == s[i - unit]; i++)
            ;
        if (i == n)
            return 1;
    }
    return 0;
}

/* The whole (lower-cased) string is a run of one of SEQUENCES, forwards or backwards. */
static int is_sequence(const char *s, size_t n)
{
    int k;

    if (n < 3)
        return 0;
    for (k = 0; SEQUENCES[k]; k++) {
        const char *seq = SEQUENCES[k];
        size_t len = strlen(seq), start, i;

        if (n > len)
            continue;
        for (start = 0; start + n <= len; start++) {
            for (i = 0; i < n && s[i] == seq[start + i]; i++)
                ;
            if (i == n)
                return 1;
            for (i = 0; i < n && s[i] == seq[start + n - 1 - i]; i++)
                ;
            if (i == n)
                return 1;
        }
    }
    return 0;
}

static int is_year(const char *s, size_t n)
{
    return n == 4 && ((s[0] == '1' && s[1] == '9') || (s[0] == '2' && s[1] == '0')) &&
           isdigit((unsigned char)s[2]) && isdigit((unsigned char)s[3]);
}

/* What people add to a common word to "make it strong": a few characters (password1!),
 * a year (monkey2015) or a simple run (dragon1234, 0000tiger). A longer run of random
 * digits (Tiger8567, the project's default passwords) is not an affix: it is the part an
 * attacker has to guess. */
static int is_guessable_affix(const char *s, size_t n)
{
    return n <= 3 || is_year(s, n) || is_repeat(s, n) || is_sequence(s, n);
}

/* The password without guessable non-letter runs at either end. */
static void core_of(const char *s, size_t n, size_t *start, size_t *len)
{
    size_t lead = 0, trail = 0;

    while (lead < n && !is_letter((unsigned char)s[lead]))
        lead++;
    if (lead == n) {            /* no letters at all: nothing to strip down to */
        *start = 0;
        *len = n;
        return;
    }
    while (trail < n - lead && !is_letter((unsigned char)s[n - 1 - trail]))
        trail++;
    *start = 0;
    *len = n;
    if (lead && is_guessable_affix(s, lead)) {
        *start = lead;
        *len -= lead;
    }
    if (trail && is_guessable_affix(s + n - trail, trail))
        *len -= trail;
}

/* p@ssw0rd -> password (and the "1 is l" reading into alt). */
static void unleet(const char *s, size_t n, char *out, char *alt)
{
    size_t i;

    for (i = 0; i < n; i++) {
        char c = s[i], d;

        switch (c) {
        case '0': d = 'o'; break;
        case '1': case '!': d = 'i'; break;
        case '3': d = 'e'; break;
        case '4': case '@': d = 'a'; break;
        case '5': case '$': d = 's'; break;
        case '7': d = 't'; break;
        default: d = c;
        }
        out[i] = d;
        alt[i] = c == '1' ? 'l' : d;
    }
    out[n] = alt[n] = '\0';
}

/* -- the deny-list: one password a line, loaded once, reloaded when the file changes --- */

static struct {
    char path[1024];
    time_t mtime;
    off_t size;
    char **words;
    size_t count;
} deny;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void deny_free(void)
{
    size_t i;

    for (i = 0; i < deny.count; i++)
        free(deny.words[i]);
    free(deny.words);
    deny.words = NULL;
    deny.count = 0;
    deny.path[0] = '\0';
}

/* 0 when the list for path is loaded; -1 when it cannot be read. */
static int deny_load(const char *path)
{
    struct stat st;
    FILE *fh;
    char line[MIMS_MAX_LINE + 2];
    size_t cap = 0;

    if (stat(path, &st) != 0)
        return -1;
    if (deny.words && strcmp(deny.path, path) == 0 && deny.mtime == st.st_mtime &&
        deny.size == st.st_size)
        return 0;
    deny_free();
    fh = fopen(path, "r");
    if (fh == NULL)
        return -1;
    while (fgets(line, sizeof line, fh)) {
        size_t n = strcspn(line, "\r\n");
        char *word;

        if (line[n] == '\0' && !feof(fh)) {     /* an over-long line: skip the rest of it */
            int ch;
            while ((ch = fgetc(fh)) != EOF && ch != '\n')
                ;
            continue;
        }
        line[n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        if (deny.count == cap) {
            char **grown = realloc(deny.words, (cap ? cap * 2 : 4096) * sizeof *grown);
            if (grown == NULL)
                break;
            deny.words = grown;
            cap = cap ? cap * 2 : 4096;
        }
        word = lower_dup(line, n);
        if (word == NULL)
            break;
        deny.words[deny.count++] = word;
    }
    fclose(fh);
    if (deny.count == 0) {
        deny_free();
        return -1;
    }
    qsort(deny.words, deny.count, sizeof *deny.words, cmp_str);
    snprintf(deny.path, sizeof deny.path, "%s", path);
    deny.mtime = st.st_mtime;
    deny.size = st.st_size;
    return 0;
}

static int denied(const char *s)
{
    return deny.count && *s &&
           bsearch(&s, deny.words, deny.count, sizeof *deny.words, cmp_str) != NULL;
}

/* -- what the entry says about its person ---------------------------------------------- */

enum part_kind { PART_NAME, PART_LOGIN, PART_SCHOOL };

struct parts {
    char *text[MIMS_MAX_PARTS];
    enum part_kind kind[MIMS_MAX_PARTS];
    size_t count;
};

/* Words that join Malay, Tamil and European names rather than name anyone. */
static const char *const CONNECTORS[] = {
    "bin", "binte", "binti", "bte", "van", "von", "der", "den", "del", "dos", "das", NULL
};

static void add_part(struct parts *p, const char *s, size_t n, enum part_kind kind)
{
    char *text;
    int k;

    if (p->count == MIMS_MAX_PARTS)
        return;
    text = lower_dup(s, n);
    if (text == NULL)
        return;
    if (utf8_chars(text) < MIMS_MIN_WORD)
        goto skip;
    for (k = 0; CONNECTORS[k]; k++)
        if (strcmp(text, CONNECTORS[k]) == 0)
            goto skip;
    p->text[p->count] = text;
    p->kind[p->count] = kind;
    p->count++;
    return;
skip:
    free(text);
}

/* Each run of letters in a name ("Nur Aisyah", "D'Souza", "s/o Krishnan") is a word. */
static void add_words(struct parts *p, const char *s, enum part_kind kind)
{
    size_t i = 0, n = strlen(s);

    while (i < n) {
        size_t j;

        while (i < n && !is_letter((unsigned char)s[i]))
            i++;
        for (j = i; j < n && is_letter((unsigned char)s[j]); j++)
            ;
        if (j > i)
            add_part(p, s + i, j - i, kind);
        i = j;
    }
}

static void add_attribute(struct parts *p, const char *name, const char *value)
{
    if (strcasecmp(name, "givenName") == 0 || strcasecmp(name, "sn") == 0 ||
        strcasecmp(name, "cn") == 0 || strcasecmp(name, "displayName") == 0) {
        add_words(p, value, PART_NAME);
    } else if (strcasecmp(name, "uid") == 0) {
        size_t i = 0, n = strlen(value);

        add_part(p, value, n, PART_LOGIN);
        while (i < n) {             /* the student ID's number on its own: S2614023J */
            size_t j;

            while (i < n && !isdigit((unsigned char)value[i]))
                i++;
            for (j = i; j < n && isdigit((unsigned char)value[j]); j++)
                ;
            if (j - i >= 4)
                add_part(p, value + i, j - i, PART_LOGIN);
            i = j;
        }
    } else if (strcasecmp(name, "mail") == 0) {
        const char *at = strchr(value, '@');
        size_t n = at ? (size_t)(at - value) : strlen(value), i = 0;

        add_part(p, value, n, PART_LOGIN);
        while (i < n) {             /* wei_ling_tan: wei, ling, tan */
            size_t j;

            while (i < n && !isalnum((unsigned char)value[i]) && (unsigned char)value[i] < 0x80)
                i++;
            for (j = i; j < n && (isalnum((unsigned char)value[j]) ||
                                  (unsigned char)value[j] >= 0x80); j++)
                ;
            if (j > i && j - i < n)
                add_part(p, value + i, j - i, PART_LOGIN);
            i = j;
        }
    } else if (strcasecmp(name, "mimsSchoolCode") == 0) {
        add_part(p, value, strlen(value), PART_SCHOOL);
    }
}

/* The attributes add_attribute() reads: an entry has many more (hashes, challenge answers). */
static int wanted(const char *name)
{
    static const char *const NAMES[] = {
        "givenName", "sn", "cn", "displayName", "uid", "mail", "mimsSchoolCode", NULL
    };
    int k;

    for (k = 0; NAMES[k]; k++)
        if (strcasecmp(name, NAMES[k]) == 0)
            return 1;
    return 0;
}

static void parts_free(struct parts *p)
{
    size_t i;

    for (i = 0; i < p->count; i++)
        free(p->text[i]);
    p->count = 0;
}

/* -- the rules ------------------------------------------------------------------------- */

static const char *evaluate(const char *password, const struct parts *p,
                            const char *denylist_path)
{
    size_t n = strlen(password), start, len, i;
    const char *verdict = NULL;
    char *low, *core, *plain, *alt;

    if (utf8_chars(password) > MIMS_MAX_CHARS)
        return MSG_LONG;
    if (is_all_space(password))
        return MSG_SPACE;
    low = lower_dup(password, n);
    core = malloc(n + 1);
    plain = malloc(n + 1);
    alt = malloc(n + 1);
    if (low == NULL || core == NULL || plain == NULL || alt == NULL) {
        verdict = MSG_UNAVAILABLE;
        goto done;
    }
    core_of(low, n, &start, &len);
    memcpy(core, low + start, len);
    core[len] = '\0';

    if (is_repeat(low, n) || (len >= 4 && is_repeat(core, len))) {
        verdict = MSG_REPEAT;
        goto done;
    }
    if (is_sequence(low, n) || (len >= 4 && is_sequence(core, len))) {
        verdict = MSG_SEQUENCE;
        goto done;
    }
    for (i = 0; i < p->count && !verdict; i++)
        if (p->kind[i] == PART_NAME && strstr(low, p->text[i]))
            verdict = MSG_NAME;
    for (i = 0; i < p->count && !verdict; i++)
        if (p->kind[i] == PART_LOGIN && strstr(low, p->text[i]))
            verdict = MSG_LOGIN;
    for (i = 0; i < p->count && !verdict; i++)
        if (p->kind[i] == PART_SCHOOL && strstr(low, p->text[i]))
            verdict = MSG_SCHOOL;
    if (verdict)
        goto done;

    if (denylist_path == NULL || deny_load(denylist_path) != 0) {
        /* Fail closed: a missing list must not quietly let "password1" through. `directory
         * up` checks the file exists, so this is a broken install, and slapd logs it. */
        verdict = MSG_UNAVAILABLE;
        goto done;
    }
    unleet(core, len, plain, alt);
    if (denied(low) || denied(core) || denied(plain) || denied(alt))
        verdict = MSG_COMMON;
done:
    /* Scrub our copies of the password before they go back to the allocator. */
    if (low) memset(low, 0, n);
    if (core) memset(core, 0, n);
    if (plain) memset(plain, 0, n);
    if (alt) memset(alt, 0, n);
    free(low);
    free(core);
    free(plain);
    free(alt);
    return verdict;
}

/* The rules on plain values: the password, the entry's attributes as (name, value) pairs
 * and the deny-list file. Returns 0 when the password may be used; otherwise non-zero, and
 * the refusal text ("mims:<code> <sentence>") in msg. No slapd symbol is used here, so
 * tests load the built .so with ctypes and call this directly. */
int mims_pwcheck_values(const char *password, const char *const *attr_names,
                        const char *const *attr_values, size_t count,
                        const char *denylist_path, char *msg, size_t msglen)
{
    struct parts p;
    const char *verdict;
    size_t i;

    memset(&p, 0, sizeof p);
    for (i = 0; i < count; i++)
        if (attr_names[i] && attr_values[i])
            add_attribute(&p, attr_names[i], attr_values[i]);
    verdict = evaluate(password ? password : "", &p, denylist_path);
    parts_free(&p);
    if (verdict == NULL)
        return LDAP_SUCCESS;
    if (msg && msglen)
        snprintf(msg, msglen, "%s", verdict);
    return verdict == MSG_UNAVAILABLE ? LDAP_OTHER : LDAP_CONSTRAINT_VIOLATION;
}

/* -- the ppolicy entry point ------------------------------------------------------------
 * slapd 2.5.13 (servers/slapd/overlays/ppolicy.c, check_password_quality) calls
 *   int check_password(char *passwd, char **text, Entry *ent, struct berval *arg)
 * with *text NULL; a text we set is sent to the client and then released with free(). */
int check_password(char *pPasswd, char **ppErrStr, Entry *pEntry, struct berval *pArg)
{
    const char *names[MIMS_MAX_PARTS], *vals[MIMS_MAX_PARTS];
    char path[1024] = "";
    char msg[256];
    size_t count = 0;
    Attribute *a;
    int rc;

    if (pArg && pArg->bv_val && pArg->bv_len < sizeof path) {
        memcpy(path, pArg->bv_val, pArg->bv_len);
        path[pArg->bv_len] = '\0';
    }
    for (a = pEntry ? pEntry->e_attrs : NULL; a && count < MIMS_MAX_PARTS; a = a->a_next) {
        unsigned i;

        if (a->a_desc == NULL || a->a_vals == NULL || !wanted(a->a_desc->ad_cname.bv_val))
            continue;
        for (i = 0; i < a->a_numvals && a->a_vals[i].bv_val && count < MIMS_MAX_PARTS; i++) {
            names[count] = a->a_desc->ad_cname.bv_val;
            vals[count] = a->a_vals[i].bv_val;
            count++;
        }
    }
    rc = mims_pwcheck_values(pPasswd, names, vals, count, path[0] ? path : NULL, msg,
                             sizeof msg);
    if (rc != LDAP_SUCCESS && ppErrStr)
        *ppErrStr = strdup(msg);
    return rc;
}
