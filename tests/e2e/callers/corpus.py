"""The caller corpus: how each row of spec/callers.md section 1 runs
/usr/sbin/sendmail, as data for tests/e2e/test_callers.py.

Each case is one dict:

  id        "NN-name", NN the row of the caller table (a letter for a
            second shape of the same caller)
  caller    who, and where the shape comes from ([O] observed with the
            real program, [S] read in its source, as in callers.md)
  argv0     argv[0] as the caller execs it
  argv      the caller's exact argument vector after argv[0] (after sh
            word splitting where the caller goes through sh -c); the
            test prepends "-C <test config>"
  stdin     the exact bytes the caller writes: line ends, header order,
            Bcc lines, lone dots as that caller produces them
  config    extra ssmtp.conf keys (the base: HostName=postino-host.
            example.test, RewriteDomain=example.test, no aliases file)
  env       extra environment (the base is PATH only, as under cron)

What must happen (strings may use {login} and {gecos}, the caller's login
name and GECOS name):

  rc        exit status (default 0; 0 means silence on stdout and stderr,
            anything else one "sendmail: ..." line on stderr and nothing
            sent)
  mail_from the envelope sender (MAIL FROM)
  rcpts     the set of envelope recipients (RCPT TO)
  rewritten {(header, value as written): value as delivered}; every other
            header of the caller is delivered unchanged and in order, less
            Bcc, Resent-Bcc, Return-Path and Content-Length
  added     headers postino adds because the caller did not write them
            (Received: is always added, first)
  from_added the value of an added From:
  body      the delivered body (CRLF); by default the caller's body with
            line ends made CRLF
  params    MAIL FROM parameters that must be present (BODY=8BITMIME)
  smtp      -bs only: the reply codes on stdout, in order
  message   -bs only: the message inside the dialogue, un-stuffed, from
            which headers and body are judged
"""

L = "{login}@example.test"      # the default envelope sender
ROOT = "root@example.test"      # root qualified, no Root= key


def crlf(text):
    return text.replace("\n", "\r\n")


def stuff(text):
    """SMTP dot-stuffing of a CRLF message, as a -bs client sends it."""
    return "\r\n".join("." + l if l.startswith(".") else l
                       for l in text.split("\r\n"))


# -- rows 8 and 10: the -bs dialogues -------------------------------------

SYMFONY_MESSAGE = crlf(
    "Message-ID: <4b1f0c2d9e8a7b6c@example.org>\n"
    "Date: Sat, 21 Nov 2026 10:00:00 +0000\n"
    "Subject: Welcome aboard\n"
    "From: App <app@example.org>\n"
    "To: a@example.org\n"
    "Cc: b@example.org\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "Visit https://example.org/start\n"
    ".well-known is a directory\n"
    "..and this line starts with two dots\n")

LARAVEL_MESSAGE = crlf(
    "Message-ID: <9a8b7c6d5e4f@example.org>\n"
    "Date: Sat, 21 Nov 2026 10:00:00 +0000\n"
    "Subject: Reset Password Notification\n"
    "From: Laravel <hello@example.org>\n"
    "To: user@example.org\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "Click the button below to reset your password.\n"
    ".\n"
    "Regards, Laravel\n")


def bs_dialogue(helo, sender, rcpts, message, before_mail=()):
    lines = [helo] + list(before_mail) + ["MAIL FROM:<%s>" % sender]
    lines += ["RCPT TO:<%s>" % r for r in rcpts] + ["DATA"]
    head = "".join(l + "\r\n" for l in lines)
    return (head + stuff(message) + ".\r\nQUIT\r\n").encode()


CASES = [
    dict(
        id="01-debian-cron",
        caller="Debian cron 3.0pl1-162, MAILTO a comma list [O][S]",
        argv0="/usr/sbin/sendmail",
        argv=["-FCronDaemon", "-i", "-B8BITMIME", "-oem",
              "ops@example.org,dev@example.org"],
        stdin=(
            "From: root (Cron Daemon)\n"
            "To: ops@example.org,dev@example.org\n"
            "Subject: Cron <root@postino-host> /usr/local/bin/rotate -v\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=UTF-8\n"
            "Content-Transfer-Encoding: 8bit\n"
            "X-Cron-Env: <MAILTO=ops@example.org,dev@example.org>\n"
            "X-Cron-Env: <SHELL=/bin/sh>\n"
            "X-Cron-Env: <HOME=/root>\n"
            "X-Cron-Env: <PATH=/usr/bin:/bin>\n"
            "X-Cron-Env: <LOGNAME=root>\n"
            "\n"
            "rotated 3 files\n"
            ".\n"
            "Z\u00fcrich: done\n").encode(),
        mail_from=L,
        rcpts=["ops@example.org", "dev@example.org"],
        rewritten={("From", "root (Cron Daemon)"):
                   "root@example.test (Cron Daemon)"},
        added=["Date", "Message-ID"],
        params=["BODY=8BITMIME"],
    ),
    dict(
        id="02-cronie",
        caller="cronie 1.7 (RHEL/Fedora), MAILFMT [S]",
        argv0="/usr/sbin/sendmail",
        argv=["-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t", "-f",
              "root"],
        stdin=(
            "From: \"(Cron Daemon)\" <root>\n"
            "To: ops@example.org, dev@example.org\n"
            "Subject: Cron <root@postino-host> /usr/bin/backup\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=\"UTF-8\"\n"
            "Content-Transfer-Encoding: 8bit\n"
            "Precedence: bulk\n"
            "Auto-Submitted: auto-generated\n"
            "X-Cron-Env: <SHELL=/bin/sh>\n"
            "X-Cron-Env: <MAILTO=ops@example.org, dev@example.org>\n"
            "\n"
            "backup finished\n").encode(),
        mail_from=ROOT,
        rcpts=["ops@example.org", "dev@example.org"],
        rewritten={("From", "\"(Cron Daemon)\" <root>"):
                   "\"(Cron Daemon)\" <root@example.test>"},
        added=["Date", "Message-ID"],
    ),
    dict(
        id="03-anacron",
        caller="Debian anacron 2.3-36, MAILTO=root, no -i [O][S]",
        argv0="/usr/sbin/sendmail",
        argv=["-FAnacron", "-odi", "root"],
        stdin=(
            "From: Anacron <root>\n"
            "To: root\n"
            "Subject: Anacron job 'cron.daily' on postino-host\n"
            "Content-Type: text/plain; charset=\"ANSI_X3.4-1968\"\n"
            "\n"
            "/etc/cron.daily/logrotate:\n"
            "error: skipping \"/var/log/app.log\": insecure permissions\n"
            ".\n"
            "without -i the lone dot above ends the message\n").encode(),
        mail_from=L,
        rcpts=[ROOT],
        rewritten={("From", "Anacron <root>"): "Anacron <root@example.test>",
                   ("To", "root"): ROOT},
        added=["Date", "Message-ID"],
        body=crlf("/etc/cron.daily/logrotate:\n"
                  "error: skipping \"/var/log/app.log\": insecure "
                  "permissions\n").encode(),
    ),
    dict(
        id="03b-anacron-empty-mailto",
        caller="Debian anacron with MAILTO= passes an empty argv element "
               "[O]: no recipient, usage error",
        argv0="/usr/sbin/sendmail",
        argv=["-FAnacron", "-odi", ""],
        stdin=(
            "From: Anacron <root>\n"
            "To: \n"
            "Subject: Anacron job 'cron.weekly' on postino-host\n"
            "Content-Type: text/plain; charset=\"ANSI_X3.4-1968\"\n"
            "\n"
            "job output\n").encode(),
        rc=64,
    ),
    dict(
        id="04-systemd-cron",
        caller="systemd-cron 1.15 mail_on_failure (sendmail on PATH) [S]",
        argv0="sendmail",
        argv=["-i", "-B8BITMIME", "root"],
        stdin=(
            "Content-Type: text/plain; charset=\"utf-8\"\n"
            "MIME-Version: 1.0\n"
            "Content-Transfer-Encoding: 8bit\n"
            "Date: Sat, 21 Nov 2026 06:25:01 +0000\n"
            "From: root (systemd-cron)\n"
            "To: root\n"
            "Subject: [postino-host] job cron-daily-apt.service failed\n"
            "Auto-Submitted: auto-generated\n"
            "\n"
            "\u25cf cron-daily-apt.service - [Cron] /etc/cron.daily/apt\n"
            "     Active: failed (Result: exit-code)\n").encode(),
        mail_from=L,
        rcpts=[ROOT],
        rewritten={("From", "root (systemd-cron)"):
                   "root@example.test (systemd-cron)",
                   ("To", "root"): ROOT},
        added=["Message-ID"],
        params=["BODY=8BITMIME"],
    ),
    dict(
        id="05-php-mail",
        caller="PHP 8.2 mail() with sendmail_path '-t -i' and "
               "additional_params -fbounce@...: CRLF headers, LF body "
               "[O, captured from php-cli]",
        argv0="/usr/sbin/sendmail",
        argv=["-t", "-i", "-fbounce@example.org"],
        stdin=(b"To: customer@example.org\r\n"
               b"Subject: Your order 1042\r\n"
               b"From: Shop <shop@example.org>\r\n"
               b"Reply-To: support@example.org\r\n"
               b"Bcc: audit@example.org\r\n"
               b"Content-Type: text/plain; charset=UTF-8\r\n"
               b"\r\n"
               b"Hello,\nyour order has shipped.\n.\nThanks\r\n"),
        mail_from="bounce@example.org",
        rcpts=["customer@example.org", "audit@example.org"],
        added=["Date", "Message-ID"],
        body=b"Hello,\r\nyour order has shipped.\r\n.\r\nThanks\r\n",
    ),
    dict(
        id="05b-php-mail-f-separate",
        caller="PHP mail() with additional_params '-f bounce@...' "
               "(separate), a display name in To:, a '..' line [O]",
        argv0="/usr/sbin/sendmail",
        argv=["-t", "-i", "-f", "bounce@example.org"],
        stdin=(b"To: a@example.org, B Person <b@example.org>\r\n"
               b"Subject: Report\r\n"
               b"From: reports@example.org\r\n"
               b"\r\n"
               b"line\n..starts with two dots\n\r\n"),
        mail_from="bounce@example.org",
        rcpts=["a@example.org", "b@example.org"],
        added=["Date", "Message-ID"],
        body=b"line\r\n..starts with two dots\r\n\r\n",
    ),
    dict(
        id="06-phpmailer-sendmail",
        caller="PHPMailer 6 isSendmail(): -f attached, Bcc header, "
               "undisclosed-recipients group, LF [S]",
        argv0="/usr/sbin/sendmail",
        argv=["-oi", "-fbounces@example.org", "-t"],
        stdin=(
            "Date: Sat, 21 Nov 2026 10:00:00 +0000\n"
            "To: undisclosed-recipients:;\n"
            "From: Shop <shop@example.org>\n"
            "Bcc: a@example.org, b@example.org\n"
            "Subject: Newsletter\n"
            "Message-ID: <c0ffee42@example.org>\n"
            "X-Mailer: PHPMailer 6.6.3 (https://github.com/PHPMailer/"
            "PHPMailer)\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=iso-8859-1\n"
            "\n"
            "Hello subscribers.\n").encode(),
        mail_from="bounces@example.org",
        rcpts=["a@example.org", "b@example.org"],
        added=[],
    ),
    dict(
        id="07-wordpress-wp-mail",
        caller="WordPress wp_mail (PHPMailer isMail through mail()): "
               "empty To:, Bcc only, no -f [S]",
        argv0="/usr/sbin/sendmail",
        argv=["-t", "-i"],
        stdin=(b"To: \r\n"
               b"Subject: [Blog] Please moderate a comment\r\n"
               b"Date: Sat, 21 Nov 2026 10:00:00 +0000\r\n"
               b"From: WordPress <wordpress@example.org>\r\n"
               b"Bcc: editor@example.org, author@example.org\r\n"
               b"Message-ID: <Yx1k2@example.org>\r\n"
               b"X-Mailer: PHPMailer 6.6.3 (https://github.com/PHPMailer/"
               b"PHPMailer)\r\n"
               b"MIME-Version: 1.0\r\n"
               b"Content-Type: text/plain; charset=UTF-8\r\n"
               b"\r\n"
               b"A new comment is waiting for approval.\r\n\r\n"),
        mail_from=L,
        rcpts=["editor@example.org", "author@example.org"],
        added=[],
    ),
    dict(
        id="08-symfony-bs",
        caller="Symfony Mailer SendmailTransport default '-bs': HELO, "
               "dot-stuffed CRLF body [S]",
        argv0="/usr/sbin/sendmail",
        argv=["-bs"],
        stdin=bs_dialogue("HELO [127.0.0.1]", "app@example.org",
                          ["a@example.org", "b@example.org"],
                          SYMFONY_MESSAGE),
        message=SYMFONY_MESSAGE.encode(),
        smtp=["220", "250", "250", "250", "250", "354", "250", "221"],
        mail_from="app@example.org",
        rcpts=["a@example.org", "b@example.org"],
        added=[],
    ),
    dict(
        id="09-symfony-t-mode",
        caller="Symfony native:// '-t -i': -t removed, -f and -- added "
               "[S]",
        argv0="/usr/sbin/sendmail",
        argv=["-i", "-fapp@example.org", "--", "a@example.org",
              "b@example.org"],
        stdin=(
            "Message-ID: <5e6f7a8b@example.org>\n"
            "Date: Sat, 21 Nov 2026 10:00:00 +0000\n"
            "Subject: Invoice 77\n"
            "From: App <app@example.org>\n"
            "To: a@example.org\n"
            "Cc: b@example.org\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\n"
            "Content-Transfer-Encoding: quoted-printable\n"
            "\n"
            "Your invoice is attached.\n"
            ".\n"
            ".signature\n").encode(),
        mail_from="app@example.org",
        rcpts=["a@example.org", "b@example.org"],
        added=[],
    ),
    dict(
        id="09b-symfony-t-mode-no-i",
        caller="Symfony with command '-t' (no -i): it dot-stuffs "
               "'\\n.' itself; postino keeps '..' as Postfix does [S]",
        argv0="/usr/sbin/sendmail",
        argv=["-fapp@example.org", "--", "a@example.org"],
        stdin=(
            "Subject: Links\n"
            "From: App <app@example.org>\n"
            "To: a@example.org\n"
            "\n"
            "See https://example\n"
            "..org/offer\n").encode(),
        mail_from="app@example.org",
        rcpts=["a@example.org"],
        added=["Date", "Message-ID"],
    ),
    dict(
        id="10-laravel-bs-i",
        caller="Laravel MAIL_SENDMAIL_PATH '-bs -i' (SwiftMailer/Symfony "
               "SmtpTransport): HELO, NOOP ping, RSET [S]",
        argv0="/usr/sbin/sendmail",
        argv=["-bs", "-i"],
        stdin=bs_dialogue("HELO [127.0.0.1]", "hello@example.org",
                          ["user@example.org"], LARAVEL_MESSAGE,
                          before_mail=["NOOP", "RSET"]),
        message=LARAVEL_MESSAGE.encode(),
        smtp=["220", "250", "250", "250", "250", "250", "354", "250",
              "221"],
        mail_from="hello@example.org",
        rcpts=["user@example.org"],
        added=[],
    ),
    dict(
        id="11-mutt",
        caller="mutt 2.2 $sendmail '-oem -oi' with use_8bitmime, "
               "use_envelope_from, dsn_notify, dsn_return; '--' [O][S]",
        argv0="/usr/sbin/sendmail",
        argv=["-oem", "-oi", "-B8BITMIME", "-f", "me@example.org", "-N",
              "failure,delay", "-R", "hdrs", "--", "to@example.org",
              "cc@example.org", "bcc@example.org"],
        stdin=(
            "Date: Sat, 21 Nov 2026 10:00:00 +0100\n"
            "From: Me <me@example.org>\n"
            "To: to@example.org\n"
            "Cc: cc@example.org\n"
            "Subject: =?utf-8?Q?R=C3=A9union?=\n"
            "Message-ID: <20261121090000.GA1234@example.org>\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\n"
            "Content-Disposition: inline\n"
            "Content-Transfer-Encoding: 8bit\n"
            "User-Agent: Mutt/2.2.12 (2023-09-09)\n"
            "\n"
            "Salut, \u00e0 demain.\n"
            "\n"
            "-- \n"
            "Me\n").encode(),
        mail_from="me@example.org",
        rcpts=["to@example.org", "cc@example.org", "bcc@example.org"],
        added=[],
        params=["BODY=8BITMIME"],
    ),
    dict(
        id="12-git-send-email",
        caller="git send-email 2.39.5 with --envelope-sender, To, two Cc "
               "(folded), one Bcc [O, captured]",
        argv0="/usr/sbin/sendmail",
        argv=["-f", "dev@example.org", "-i", "maintainer@example.org",
              "list@example.org", "reviewer@example.org",
              "archive@example.org"],
        stdin=(
            "From: Dev Eloper <dev@example.org>\n"
            "To: maintainer@example.org\n"
            "Cc: list@example.org,\n"
            "\treviewer@example.org\n"
            "Subject: [PATCH] queue: retry sooner\n"
            "Date: Sun, 22 Nov 2026 01:38:36 +0000\n"
            "Message-Id: <20261122013836.2043-1-dev@example.org>\n"
            "X-Mailer: git-send-email 2.39.5\n"
            "MIME-Version: 1.0\n"
            "Content-Transfer-Encoding: 8bit\n"
            "\n"
            "Retry after 30 s instead of 60 s.\n"
            "---\n"
            " postino.8 | 2 +-\n"
            " 1 file changed, 1 insertion(+), 1 deletion(-)\n"
            "\n"
            "diff --git a/postino.8 b/postino.8\n"
            "index bb4cbac..326215d 100644\n"
            "--- a/postino.8\n"
            "+++ b/postino.8\n"
            "@@ -1,3 +1,3 @@\n"
            " .Sh QUEUE\n"
            "-.Pp\n"
            "+..\n"
            " .\n"
            "-- \n"
            "2.39.5\n"
            "\n").encode(),
        mail_from="dev@example.org",
        rcpts=["maintainer@example.org", "list@example.org",
               "reviewer@example.org", "archive@example.org"],
        added=[],
    ),
    dict(
        id="13-bsd-mailx",
        caller="bsd-mailx 8.1.2: mail -s subj -c cc -b bcc -r ops@... "
               "to1 to2 [O, captured]",
        argv0="/usr/sbin/sendmail",
        argv=["-i", "-t", "-f", "ops@example.org"],
        stdin=(
            "From: ops@example.org\n"
            "To: to1@example.org, to2@example.org\n"
            "Subject: hello subj\n"
            "Cc: cc@example.org\n"
            "Bcc: bcc@example.org\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=\"ANSI_X3.4-1968\"\n"
            "Content-Transfer-Encoding: 8bit\n"
            "\n"
            "body line\n"
            ".\n"
            "after\n").encode(),
        mail_from="ops@example.org",
        rcpts=["to1@example.org", "to2@example.org", "cc@example.org",
               "bcc@example.org"],
        added=["Date", "Message-ID"],
    ),
    dict(
        id="14-s-nail",
        caller="s-nail 14.9 (RHEL 9 mailx): -r, '--', no Bcc header [O]",
        argv0="/usr/sbin/sendmail",
        argv=["-i", "-f", "me@example.org", "--", "to@example.org",
              "cc@example.org", "bcc@example.org"],
        stdin=(
            "Date: Sat, 21 Nov 2026 10:00:00 +0000\n"
            "From: me@example.org\n"
            "To: to@example.org\n"
            "Cc: cc@example.org\n"
            "Subject: status\n"
            "Message-ID: <20261121100000.Ab1Cd2Ef@example.org>\n"
            "User-Agent: s-nail v14.9.24\n"
            "\n"
            "all good\n").encode(),
        mail_from="me@example.org",
        rcpts=["to@example.org", "cc@example.org", "bcc@example.org"],
        added=[],
    ),
    dict(
        id="15-gnu-mailutils",
        caller="GNU mailutils mail 3.15: -f login@hostname always, angle "
               "Bcc, no From header [O]",
        argv0="/usr/sbin/sendmail",
        argv=["-oi", "-f", "root@postino-host.example.test", "-t"],
        stdin=(
            "Subject: disk report\n"
            "Cc: <cc@example.org>\n"
            "Bcc: <bcc@example.org>\n"
            "To: <to@example.org>\n"
            "User-Agent: mail (GNU Mailutils 3.15)\n"
            "Date: Sat, 21 Nov 2026 10:00:00 +0000\n"
            "\n"
            "/dev/sda1 91%\n").encode(),
        mail_from="root@postino-host.example.test",
        rcpts=["to@example.org", "cc@example.org", "bcc@example.org"],
        added=["From", "Message-ID"],
        from_added="{gecos} <root@postino-host.example.test>",
    ),
    dict(
        id="16-smartd-via-bsd-mailx",
        caller="smartmontools 10mail: mail -s ... root, through bsd-mailx "
               "[O, captured]",
        argv0="/usr/sbin/sendmail",
        argv=["-i", "-t"],
        config={"Root": "admin@example.org"},
        stdin=(
            "To: root\n"
            "Subject: SMART error (FailedUsageAttribute) detected on host: "
            "postino-host\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=\"ANSI_X3.4-1968\"\n"
            "Content-Transfer-Encoding: 8bit\n"
            "\n"
            "This message was generated by the smartd daemon running on:\n"
            "\n"
            "   host name:  postino-host\n"
            "   DNS domain: example.test\n"
            "\n"
            "The following warning/error was logged by the smartd daemon:"
            "\n\n"
            "Device: /dev/sda [SAT], Failed SMART usage Attribute: 5 "
            "Reallocated_Sector_Ct.\n").encode(),
        mail_from=L,
        rcpts=["admin@example.org"],
        rewritten={("To", "root"): ROOT},
        added=["From", "Date", "Message-ID"],
        from_added="{gecos} <{login}@example.test>",
    ),
    dict(
        id="17-sudo",
        caller="sudo 1.9 mailerflags '-t', no -i; unqualified To and From "
               "[O]",
        argv0="/usr/sbin/sendmail",
        argv=["-t"],
        config={"Root": "security@example.org"},
        env={"HOME": "/", "LOGNAME": "rtuser", "USER": "rtuser",
             "LC_CTYPE": "C.UTF-8"},
        stdin=(
            "To: root\n"
            "From: rtuser\n"
            "Auto-Submitted: auto-generated\n"
            "Subject: *** SECURITY information for postino-host ***\n"
            "\n"
            "postino-host : Nov 21 10:00:00 : rtuser : user NOT in sudoers "
            "; TTY=pts/0 ; PWD=/home/rtuser ; USER=root ; COMMAND=/bin/sh"
            "\n\n").encode(),
        mail_from=L,
        rcpts=["security@example.org"],
        rewritten={("To", "root"): ROOT,
                   ("From", "rtuser"): "rtuser@example.test"},
        added=["Date", "Message-ID"],
    ),
    dict(
        id="18-logwatch",
        caller="logwatch 7.7 '-t': one To: per address, From: Logwatch "
               "(a bare word) [S]",
        argv0="/usr/sbin/sendmail",
        argv=["-t"],
        config={"Root": "ops@example.org"},
        stdin=(
            "To: root\n"
            "To: ops@example.org\n"
            "From: Logwatch\n"
            "Subject: Logwatch for postino-host (Linux)\n"
            "Auto-Submitted: auto-generated\n"
            "Precedence: bulk\n"
            "MIME-Version: 1.0\n"
            "Content-Transfer-Encoding: 7bit\n"
            "Content-Type: text/plain; charset=\"iso-8859-1\"\n"
            "\n"
            " \n"
            " ################### Logwatch 7.7 (01/22/22) ############## \n"
            "        Processing Initiated: Sat Nov 21 06:25:05 2026\n"
            " ######################################################### \n"
            ).encode(),
        mail_from=L,
        # root goes to Root=ops@example.org: one RCPT, not two
        rcpts=["ops@example.org"],
        rewritten={("To", "root"): ROOT,
                   ("From", "Logwatch"): "Logwatch@example.test"},
        added=["Date", "Message-ID"],
    ),
    dict(
        id="19-mdadm",
        caller="mdadm 4.2 --monitor: popen('/usr/lib/sendmail -t') [S]",
        argv0="/usr/lib/sendmail",
        argv=["-t"],
        stdin=(
            "From: mdadm monitoring <root@postino-host.example.test>\n"
            "To: root\n"
            "Subject: Fail event on /dev/md0:postino-host\n"
            "\n"
            "This is an automatically generated mail message from mdadm\n"
            "running on postino-host\n"
            "\n"
            "A Fail event had been detected on md device /dev/md0.\n"
            "\n"
            "Faithfully yours, etc.\n"
            "\n"
            "P.S. The /proc/mdstat file currently contains the following:\n"
            "\n"
            "Personalities : [raid1] \n"
            "md0 : active raid1 sdb1[1](F) sda1[0]\n"
            "      1046528 blocks super 1.2 [2/1] [U_]\n"
            "      \n"
            "unused devices: <none>\n").encode(),
        mail_from=L,
        rcpts=[ROOT],
        rewritten={("To", "root"): ROOT},
        added=["Date", "Message-ID"],
    ),
    dict(
        id="20-unattended-upgrades",
        caller="unattended-upgrades 2.9 ['-oi', '-t'] [S]",
        argv0="/usr/sbin/sendmail",
        argv=["-oi", "-t"],
        stdin=(
            "Subject: unattended-upgrades result for postino-host: "
            "SUCCESS\n"
            "From: root\n"
            "To: root\n"
            "Auto-Submitted: auto-generated\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=\"utf-8\"\n"
            "Content-Transfer-Encoding: quoted-printable\n"
            "\n"
            "Unattended upgrade result: All upgrades installed\n"
            "\n"
            "Packages that were upgraded:\n"
            " openssl=20\n").encode(),
        mail_from=L,
        rcpts=[ROOT],
        rewritten={("To", "root"): ROOT, ("From", "root"): ROOT},
        added=["Date", "Message-ID"],
    ),
    dict(
        id="21-apt-listchanges",
        caller="apt-listchanges 3.24 ['-oi', '-t']: no From, RFC 2047 "
               "Subject, 8-bit body [S]",
        argv0="/usr/sbin/sendmail",
        argv=["-oi", "-t"],
        stdin=(
            "Auto-Submitted: auto-generated\n"
            "Subject: =?utf-8?q?apt-listchanges=3A_news_for_postino-host?="
            "\n"
            "To: root\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=\"utf-8\"\n"
            "Content-Transfer-Encoding: 8bit\n"
            "\n"
            "postino (0.2.0) unstable; urgency=medium\n"
            "\n"
            "  * Relais v\u00e9rifi\u00e9.\n").encode(),
        mail_from=L,
        rcpts=[ROOT],
        rewritten={("To", "root"): ROOT},
        added=["From", "Date", "Message-ID"],
        from_added="{gecos} <{login}@example.test>",
        params=["BODY=8BITMIME"],
    ),
    dict(
        id="22-fail2ban",
        caller="fail2ban 1.0 sendmail-common.conf fallback defaults: "
               "sh -c '/usr/sbin/sendmail -f \"fail2ban\" \"root\"' [S]",
        argv0="/usr/sbin/sendmail",
        argv=["-f", "fail2ban", "root"],
        stdin=(
            "Subject: [Fail2Ban] sshd: banned 192.0.2.7 from postino-host\n"
            "Date: Sat, 21 Nov 2026 10:00:00 +0000\n"
            "From: Fail2Ban <fail2ban>\n"
            "To: root\n"
            "\n"
            "Hi,\n"
            "\n"
            "The IP 192.0.2.7 has just been banned by Fail2Ban after\n"
            "5 attempts against sshd.\n"
            "\n"
            "Regards,\n"
            "\n"
            "Fail2Ban\n").encode(),
        mail_from="fail2ban@example.test",
        rcpts=[ROOT],
        rewritten={("From", "Fail2Ban <fail2ban>"):
                   "Fail2Ban <fail2ban@example.test>",
                   ("To", "root"): ROOT},
        added=["Message-ID"],
    ),
    dict(
        id="22b-fail2ban-jail-defaults",
        caller="fail2ban jail.conf defaults: sender root@<fqdn>, "
               "destemail root@localhost [S]",
        argv0="/usr/sbin/sendmail",
        argv=["-f", "root@postino-host.example.test", "root@localhost"],
        config={"Root": "admin@example.org"},
        stdin=(
            "Subject: [Fail2Ban] sshd: started on postino-host\n"
            "Date: Sat, 21 Nov 2026 10:00:00 +0000\n"
            "From: Fail2Ban <root@postino-host.example.test>\n"
            "To: root@localhost\n"
            "\n"
            "Hi,\n"
            "\n"
            "The jail sshd has been started successfully.\n").encode(),
        mail_from="root@postino-host.example.test",
        rcpts=["admin@example.org"],
        added=["Message-ID"],
    ),
    dict(
        id="23-rkhunter",
        caller="rkhunter cron.daily: sendmail $REPORT_EMAIL, no -i [S]",
        argv0="/usr/sbin/sendmail",
        argv=["root"],
        stdin=(
            "Subject: [rkhunter] postino-host - Daily report\n"
            "To: root\n"
            "\n"
            "Warning: The SSH and rkhunter configuration options should be "
            "the same:\n"
            "         SSH configuration option 'PermitRootLogin': yes\n"
            "         Rkhunter configuration option 'ALLOW_SSH_ROOT_USER': "
            "no\n").encode(),
        mail_from=L,
        rcpts=[ROOT],
        rewritten={("To", "root"): ROOT},
        added=["From", "Date", "Message-ID"],
        from_added="{gecos} <{login}@example.test>",
    ),
    dict(
        id="24-debsecan",
        caller="debsecan: os.popen('/usr/sbin/sendmail -t', 'w') [S]",
        argv0="/usr/sbin/sendmail",
        argv=["-t"],
        stdin=(
            "Subject: Debian security status of postino-host\n"
            "To: root\n"
            "\n"
            "Security report based on the bookworm release\n"
            "\n"
            "*** New security updates\n"
            "\n"
            "  - openssl\n"
            "    CVE-2026-0001\n").encode(),
        mail_from=L,
        rcpts=[ROOT],
        rewritten={("To", "root"): ROOT},
        added=["From", "Date", "Message-ID"],
        from_added="{gecos} <{login}@example.test>",
    ),
    dict(
        id="25-cron-apt",
        caller="cron-apt: sendmail -t -oi < file (PATH lookup) [S]",
        argv0="sendmail",
        argv=["-t", "-oi"],
        stdin=(
            "To: root\n"
            "Subject: CRON-APT completed on postino-host "
            "[/etc/cron-apt/config]\n"
            "\n"
            "CRON-APT RUN [/etc/cron-apt/config]: Sat Nov 21 04:00:01 UTC "
            "2026\n"
            "CRON-APT ACTION: 3-download\n"
            "CRON-APT LINE: /usr/bin/apt-get -o quiet=1 dist-upgrade -d -y\n"
            ).encode(),
        mail_from=L,
        rcpts=[ROOT],
        rewritten={("To", "root"): ROOT},
        added=["From", "Date", "Message-ID"],
        from_added="{gecos} <{login}@example.test>",
    ),
    dict(
        id="26-logcheck-mime-construct",
        caller="logcheck through mime-construct: sendmail -oi -t, a MIME "
               "message whose attached message has its own To: and Bcc: "
               "(not top-level: neither used nor removed) [S]",
        argv0="/usr/sbin/sendmail",
        argv=["-oi", "-t"],
        stdin=(
            "To: logcheck@example.org\n"
            "Subject: postino-host 2026-11-21 10:02 System Events\n"
            "MIME-Version: 1.0\n"
            "Content-Type: multipart/mixed; boundary=\"=_1763719320_42\"\n"
            "\n"
            "--=_1763719320_42\n"
            "Content-Type: text/plain\n"
            "\n"
            "System Events\n"
            "=-=-=-=-=-=-=\n"
            "Nov 21 10:01:02 postino-host kernel: usb 1-1: new device\n"
            "\n"
            "--=_1763719320_42\n"
            "Content-Type: message/rfc822\n"
            "\n"
            "From: someone@example.org\n"
            "To: inner@example.org\n"
            "Bcc: inner-bcc@example.org\n"
            "Subject: attached\n"
            "\n"
            "inner body\n"
            "--=_1763719320_42--\n").encode(),
        mail_from=L,
        rcpts=["logcheck@example.org"],
        added=["From", "Date", "Message-ID"],
        from_added="{gecos} <{login}@example.test>",
    ),
    dict(
        id="27-reportbug",
        caller="reportbug 12: sh -c 'sendmail -f <env> -oi -oem <rcpt>' "
               "[S]",
        argv0="/usr/sbin/sendmail",
        argv=["-f", "me@example.org", "-oi", "-oem",
              "submit@bugs.example.org"],
        stdin=(
            "Content-Type: text/plain; charset=\"us-ascii\"\n"
            "MIME-Version: 1.0\n"
            "Content-Transfer-Encoding: 7bit\n"
            "From: Me <me@example.org>\n"
            "To: Debian Bug Tracking System <submit@bugs.example.org>\n"
            "Subject: postino: mailq prints one blank line too many\n"
            "Message-ID: <176371932000.4242.1@postino-host>\n"
            "X-Mailer: reportbug 12.0.0\n"
            "Date: Sat, 21 Nov 2026 10:02:00 +0000\n"
            "\n"
            "Package: postino\n"
            "Version: 0.1.0\n"
            "Severity: minor\n"
            "\n"
            "Dear Maintainer,\n"
            ".\n"
            "-- System Information:\n"
            "Debian Release: 12.12\n").encode(),
        mail_from="me@example.org",
        rcpts=["submit@bugs.example.org"],
        added=[],
    ),
    dict(
        id="28-mime-lite",
        caller="MIME::Lite 3.033 send_by_sendmail: /usr/lib/sendmail -t "
               "-oi -oem -f<from> attached [S]",
        argv0="/usr/lib/sendmail",
        argv=["-t", "-oi", "-oem", "-fme@example.org"],
        stdin=(
            "Content-Disposition: inline\n"
            "Content-Transfer-Encoding: binary\n"
            "Content-Type: text/plain\n"
            "MIME-Version: 1.0\n"
            "X-Mailer: MIME::Lite 3.033 (F2.85; T2.18; A2.20; B3.15; "
            "Q3.13)\n"
            "Date: Sat, 21 Nov 2026 10:00:00 +0000\n"
            "From: me@example.org\n"
            "To: you@example.org\n"
            "Cc: them@example.org\n"
            "Subject: Hello\n"
            "\n"
            "This is the body of a test\n").encode(),
        mail_from="me@example.org",
        rcpts=["you@example.org", "them@example.org"],
        added=["Message-ID"],
    ),
    dict(
        id="29-django-sendmail-backend",
        caller="django-sendmail-backend: [sendmail] + recipients, no -i, "
               "no -t: the lone dot ends the message [S]",
        argv0="/usr/sbin/sendmail",
        argv=["a@example.org", "b@example.org"],
        stdin=(
            "Content-Type: text/plain; charset=\"utf-8\"\n"
            "MIME-Version: 1.0\n"
            "Content-Transfer-Encoding: 7bit\n"
            "Subject: Password reset on example.org\n"
            "From: webmaster@example.org\n"
            "To: a@example.org\n"
            "Cc: b@example.org\n"
            "Date: Sat, 21 Nov 2026 10:00:00 -0000\n"
            "Message-ID: <176371932000.4242.99@postino-host>\n"
            "\n"
            "Follow this link:\n"
            "https://example.org/reset/abc/\n"
            ".\n"
            "Thanks\n").encode(),
        mail_from=L,
        rcpts=["a@example.org", "b@example.org"],
        added=[],
        body=b"Follow this link:\r\nhttps://example.org/reset/abc/\r\n",
    ),
    dict(
        id="30-ruby-mail-gem",
        caller="Ruby mail gem (Rails :sendmail): -i -f <from> -- <to>, "
               "folded Content-Type [S]",
        argv0="/usr/sbin/sendmail",
        argv=["-i", "-f", "from@example.org", "--", "to@example.org"],
        stdin=(
            "Date: Sat, 21 Nov 2026 10:00:00 +0000\n"
            "From: from@example.org\n"
            "To: to@example.org\n"
            "Message-ID: <6543f0a1b2c3d_1a2b3c4d@postino-host.mail>\n"
            "Subject: Welcome\n"
            "Mime-Version: 1.0\n"
            "Content-Type: text/plain;\n"
            " charset=UTF-8\n"
            "Content-Transfer-Encoding: 7bit\n"
            "\n"
            "Welcome!\n").encode(),
        mail_from="from@example.org",
        rcpts=["to@example.org"],
        added=[],
    ),
    dict(
        id="31-nodemailer",
        caller="nodemailer sendmail transport: -i -f <from> <to...>, no "
               "--, Bcc header kept by the caller without -t, CRLF [S]",
        argv0="/usr/sbin/sendmail",
        argv=["-i", "-f", "from@example.org", "to@example.org",
              "hidden@example.org"],
        stdin=(b"Content-Type: text/plain; charset=utf-8\r\n"
               b"From: from@example.org\r\n"
               b"To: to@example.org\r\n"
               b"Bcc: hidden@example.org\r\n"
               b"Subject: Hi\r\n"
               b"Message-ID: <0e4f5a6b-7c8d-9e0f@example.org>\r\n"
               b"Content-Transfer-Encoding: 7bit\r\n"
               b"Date: Sat, 21 Nov 2026 10:00:00 +0000\r\n"
               b"MIME-Version: 1.0\r\n"
               b"\r\n"
               b"Hello\r\n"),
        mail_from="from@example.org",
        rcpts=["to@example.org", "hidden@example.org"],
        added=[],
    ),
    dict(
        id="32-rsyslog-ommail",
        caller="rsyslog ommail mode=\"sendmail\": -i -f <from> -- <rcpt> "
               "[S]",
        argv0="/usr/sbin/sendmail",
        argv=["-i", "-f", "rsyslog@example.org", "--", "ops@example.org"],
        stdin=(b"Date: Sat, 21 Nov 2026 10:00:00 +0000\r\n"
               b"From: <rsyslog@example.org>\r\n"
               b"To: <ops@example.org>\r\n"
               b"Subject: disk failure on postino-host\r\n"
               b"X-Mailer: rsyslog-ommail\r\n"
               b"\r\n"
               b"Nov 21 10:00:00 postino-host kernel: I/O error, dev sda\r\n"),
        mail_from="rsyslog@example.org",
        rcpts=["ops@example.org"],
        added=["Message-ID"],
    ),
]
