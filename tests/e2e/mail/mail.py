#!/usr/bin/env python3
"""Mail clients for tests/e2e/10-mail.sh: LMTP delivery and IMAP sessions
against a Dovecot the test started on loopback (python3 stdlib only).

Every message is generated from (user, tag, index) alone, so a check can
regenerate what was sent and compare what IMAP returns byte for byte.
Results are printed as "RESULT ok NAME" / "RESULT fail NAME: DETAIL"
lines (turned into TAP by the shell), measurements as "RATE ..." and
other lines as comments.

  mail.py deliver  --lmtp PORT --users a,b,c --n N [--shared K] [--label L]
  mail.py exercise --imap PORT --users a,b,c --n N --shared K --state DIR
  mail.py verify   --imap PORT --users a,b --state DIR [--label L]
  mail.py steady   --imap P --lmtp P --users a,b --state DIR --stop FILE --errors FILE
  mail.py revoked  --imap P --lmtp P --user carol --state DIR --t0 FILE --ttl S --margin S
"""
import argparse
import base64
import imaplib
import json
import os
import random
import re
import smtplib
import sys
import threading
import time

HOST = "127.0.0.1"
DOMAIN = "ckfs.test"
PASSWORD = "pw-%s"                  # passwd-file passwords: pw-<user>
TIMEOUT = 30.0                      # every socket: nothing may hang
WORDS = ("mail store customer key encrypted maildir dovecot fuse tree policy "
         "revoke purge certificate alice bob carol contoso fabrikam quarterly "
         "report invoice meeting agenda minutes draft final review").split()
_print_lock = threading.Lock()


def say(*a):
    with _print_lock:
        print(*a, flush=True)


def result(good, name, detail=""):
    say("RESULT %s %s%s" % ("ok" if good else "fail", name,
                            (": " + detail) if (detail and not good) else ""))
    return good


# ------------------------------------------------------------------ messages
def msgid(user, tag, i):
    return "<%s.%d.%s@%s>" % (tag, i, user, DOMAIN)


def parse_msgid(mid):
    m = re.match(r"<([a-z]+)\.(\d+)\.([a-z0-9-]+)@" + re.escape(DOMAIN) + ">$", mid)
    if not m:
        raise ValueError("not a test message id: %r" % mid)
    return m.group(3), m.group(1), int(m.group(2))


def kind_of(tag, i):
    """Size class of message i: text (1-8 KB), attach (10-100 KB), large
    (100-300 KB) or big (2-4 MB, a few per user)."""
    if tag == "base" and i % 167 == 11:
        return "big"
    r = (i * 7919) % 100
    if r < 5:
        return "large"
    if r < 30:
        return "attach"
    return "text"


def _wrap(b, width=76):
    return b"\r\n".join(b[k:k + width] for k in range(0, len(b), width))


def gen(user, tag, i, rcpts=None):
    """The exact bytes (CRLF lines) of message i of (user, tag)."""
    rnd = random.Random("%s/%s/%d" % (user, tag, i))
    kind = kind_of(tag, i)
    to = ", ".join("%s@%s" % (r, DOMAIN) for r in (rcpts or [user]))
    subject = "%s msg %04d kw-%s %s" % (tag, i, kind, " ".join(rnd.choice(WORDS) for _ in range(4)))
    text_len = rnd.randint(1000, 8000)
    words, n = [], 0
    while n < text_len:
        w = rnd.choice(WORDS)
        words.append(w)
        n += len(w) + 1
    text = b""
    line = []
    for w in words:
        line.append(w)
        if len(line) == 11:
            text += (" ".join(line)).encode() + b"\r\n"
            line = []
    text += (" ".join(line)).encode() + b"\r\n"
    if text.startswith(b"."):
        text = b"x" + text
    hdr = ("From: sender%d@example.org\r\nTo: %s\r\nSubject: %s\r\n"
           "Date: Mon, 1 Jun 2026 %02d:%02d:%02d +0000\r\nMessage-ID: %s\r\nMIME-Version: 1.0\r\n"
           % (i % 7, to, subject, (i // 3600) % 24, (i // 60) % 60, i % 60, msgid(user, tag, i))).encode()
    if kind == "text":
        return hdr + b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + text
    size = {"attach": (10_000, 100_000), "large": (100_000, 300_000),
            "big": (2_000_000, 4_000_000)}[kind]
    blob = rnd.randbytes(rnd.randint(*size))
    b = ("=_ckfs_%s_%d" % (tag, i)).encode()
    return (hdr + b"Content-Type: multipart/mixed; boundary=\"" + b + b"\"\r\n\r\n"
            + b"--" + b + b"\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" + text
            + b"--" + b + b"\r\nContent-Type: application/octet-stream\r\n"
            + b"Content-Transfer-Encoding: base64\r\n"
            + b"Content-Disposition: attachment; filename=\"attach-%d.bin\"\r\n\r\n" % i
            + _wrap(base64.b64encode(blob)) + b"\r\n--" + b + b"--\r\n")


def regen(mid):
    user, tag, i = parse_msgid(mid)
    rcpts = SHARED_RCPTS if user == "shared" else None
    return gen(user, tag, i, rcpts)


SHARED_RCPTS = ["alice", "bob", "carol"]
# What Dovecot's LMTP may put in front of a message (the config turns off
# Received: and Delivered-To:, so only Return-Path: is expected).
PREFIX_RE = re.compile(rb"\A(Return-Path: <[^>\r\n]*>\r\n)?\Z")


def same_message(fetched, sent):
    """fetched (BODY[] over IMAP) is sent, byte for byte, after at most
    the headers LMTP adds in front. Returns '' or why not."""
    if len(fetched) < len(sent) or not fetched.endswith(sent):
        n = next((k for k in range(min(len(fetched), len(sent)))
                  if fetched[-1 - k] != sent[-1 - k]), min(len(fetched), len(sent)))
        return "differs: fetched %d bytes, sent %d, last %d bytes equal" % (len(fetched), len(sent), n)
    if not PREFIX_RE.match(fetched[:len(fetched) - len(sent)]):
        return "unexpected prefix %r" % fetched[:len(fetched) - len(sent)][:200]
    return ""


# ------------------------------------------------------------------ LMTP
def lmtp_connect(port):
    c = smtplib.LMTP(HOST, port, timeout=TIMEOUT)
    c.ehlo_or_helo_if_needed()
    return c


def lmtp_send(c, rcpts, data, sender="sender@example.org"):
    """One LMTP transaction; returns one (code, text) per recipient."""
    code, resp = c.mail(sender)
    if code != 250:
        raise smtplib.SMTPResponseException(code, resp)
    accepted = []
    out = {}
    for r in rcpts:
        code, resp = c.rcpt("%s@%s" % (r, DOMAIN))
        if code in (250, 251):
            accepted.append(r)
        else:
            out[r] = (code, resp)
    if not accepted:
        c.rset()
        return out
    code, resp = c.data(data)       # the first accepted recipient's reply
    out[accepted[0]] = (code, resp)
    for r in accepted[1:]:          # LMTP: one reply per accepted recipient
        out[r] = c.getreply()
    return out


def deliver(args):
    users = args.users.split(",")
    msgs = {u: [gen(u, "base", i) for i in range(args.n)] for u in users}
    shared = [gen("shared", "base", i, SHARED_RCPTS) for i in range(args.shared)]
    nbytes = sum(len(m) for u in users for m in msgs[u])
    errors = []
    counts = {u: 0 for u in users}

    def run(u):
        try:
            c = lmtp_connect(args.lmtp)
            for i, m in enumerate(msgs[u]):
                r = lmtp_send(c, [u], m)
                if r[u][0] != 250:
                    errors.append("%s %d: %r" % (u, i, r[u]))
                    return
                counts[u] += 1
                # The shared messages go to all users in one transaction
                # each (Dovecot copies the first saved mail to the other
                # trees: EXDEV for a hard link across trees), from the
                # first user's connection, spread over the run.
                if u == users[0] and shared and i % (args.n // len(shared) or 1) == 0 and i // (args.n // len(shared) or 1) < len(shared):
                    k = i // (args.n // len(shared) or 1)
                    r = lmtp_send(c, SHARED_RCPTS, shared[k])
                    bad = {x: v for x, v in r.items() if v[0] != 250}
                    if bad:
                        errors.append("shared %d: %r" % (k, bad))
                        return
            c.quit()
        except Exception as e:          # noqa: BLE001 - reported as a failure
            errors.append("%s: %s: %s" % (u, type(e).__name__, e))

    t0 = time.time()
    ts = [threading.Thread(target=run, args=(u,)) for u in users]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.time() - t0
    total = sum(counts.values()) + args.shared * len(SHARED_RCPTS)
    say("RATE %s delivered %d messages (%.1f MB) to %d users at once in %.2f s: %.1f msg/s, %.1f MB/s"
        % (args.label, total, nbytes / 1e6, len(users), dt, total / dt, nbytes / 1e6 / dt))
    result(not errors and all(counts[u] == args.n for u in users),
           "%s: LMTP delivered %d messages to each of %s at the same time (+%d to all three in one transaction each), every one accepted"
           % (args.label, args.n, ",".join(users), args.shared), "; ".join(errors[:5]))


# ------------------------------------------------------------------ IMAP
class ImapError(Exception):
    pass


def imap_login(port, user):
    m = imaplib.IMAP4(HOST, port, timeout=TIMEOUT)
    m.login(user, PASSWORD % user)
    return m


def ok(typ, data, what):
    if typ != "OK":
        raise ImapError("%s: %s %r" % (what, typ, data))
    return data


def select(m, box, readonly=False):
    data = ok(*m.select(box, readonly=readonly), "SELECT %s" % box)
    return int(data[0])


FETCH_RE = re.compile(rb"(\d+) \(.*?UID (\d+)")


def fetch(m, uidset, items):
    """UID FETCH uidset items -> {uid: (meta bytes, literal or None)}."""
    data = ok(*m.uid("FETCH", uidset, items), "UID FETCH %s" % uidset)
    out = {}
    for d in data:
        if isinstance(d, tuple):
            meta, lit = d
        elif d is None or d == b")":
            continue
        else:
            meta, lit = d, None
        mm = FETCH_RE.match(meta)
        if not mm:
            continue
        out[int(mm.group(2))] = (meta, lit)
    return out


def flags_of(meta):
    mm = re.search(rb"FLAGS \(([^)]*)\)", meta)
    return sorted(f for f in mm.group(1).decode().split() if f != "\\Recent") if mm else None


def uid_search(m, *crit):
    data = ok(*m.uid("SEARCH", *crit), "UID SEARCH %s" % " ".join(crit))
    return [int(x) for x in data[0].split()]


def mailbox_state(m, box, bodies, user, stats=None):
    """{message-id: (uid, flags)} of box; with bodies, every BODY[] is
    compared with what was sent (a mismatch raises). Batches of 50 UIDs."""
    n = select(m, box, readonly=True)
    uids = uid_search(m, "ALL") if n else []
    if len(uids) != n:
        raise ImapError("%s: SEARCH ALL found %d, SELECT said %d" % (box, len(uids), n))
    state = {}
    items = "(UID FLAGS RFC822.SIZE BODY.PEEK[])" if bodies else \
        "(UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
    for k in range(0, len(uids), 50):
        part = uids[k:k + 50]
        got = fetch(m, ",".join(map(str, part)), items)
        for uid in part:
            if uid not in got or got[uid][1] is None:
                raise ImapError("%s: UID %d missing from FETCH" % (box, uid))
            meta, lit = got[uid]
            mm = re.search(rb"^Message-ID: (<[^>]*>)", lit, re.M | re.I)
            if not mm:
                raise ImapError("%s: UID %d has no Message-ID" % (box, uid))
            mid = mm.group(1).decode()
            if bodies:
                why = same_message(lit, regen(mid))
                if why:
                    raise ImapError("%s %s UID %d %s: %s" % (user, box, uid, mid, why))
                sz = re.search(rb"RFC822\.SIZE (\d+)", meta)
                if not sz or int(sz.group(1)) != len(lit):
                    raise ImapError("%s UID %d: RFC822.SIZE %s, BODY[] %d bytes"
                                    % (box, uid, sz and sz.group(1), len(lit)))
                if stats is not None:
                    with _print_lock:
                        stats["msgs"] += 1
                        stats["bytes"] += len(lit)
            if mid in state:
                raise ImapError("%s: %s twice" % (box, mid))
            state[mid] = (uid, flags_of(meta))
    return state


def state_path(args, user):
    return os.path.join(args.state, user + ".json")


def load_expected(args, user):
    """The expected {box: {mid: flags}}: the state saved by exercise plus
    the messages steady delivered since (INBOX, no flags)."""
    with open(state_path(args, user)) as f:
        exp = json.load(f)
    live = os.path.join(args.state, user + ".live")
    if os.path.exists(live):
        with open(live) as f:
            for mid in f.read().split():
                exp["INBOX"][mid] = []
    return exp


def exercise_user(args, user, stats, errors):
    """LIST, CREATE, SELECT, SEARCH, FETCH (every body compared), STORE,
    COPY, EXPUNGE; saves the expected state (from what was done) in
    STATE/user.json and checks it against what the server then shows."""
    step = "login"
    try:
        m = imap_login(args.imap, user)
        step = "LIST"
        boxes = ok(*m.list(), "LIST")
        if not any(re.search(rb'"?INBOX"?$', b) for b in boxes):
            raise ImapError("LIST: no INBOX in %r" % boxes)
        step = "CREATE"
        ok(*m.create("Archive"), "CREATE Archive")
        if not any(re.search(rb'"?Archive"?$', b) for b in ok(*m.list(), "LIST")):
            raise ImapError("LIST after CREATE: no Archive")
        step = "SELECT"
        n = select(m, "INBOX")
        want = args.n + args.shared
        if n != want:
            raise ImapError("SELECT INBOX: %d messages, delivered %d" % (n, want))
        step = "SEARCH"
        uids = uid_search(m, "ALL")
        if len(uids) != n:
            raise ImapError("SEARCH ALL: %d of %d" % (len(uids), n))
        big = set(uid_search(m, "LARGER", "1000000"))
        kwbig = set(uid_search(m, "SUBJECT", "kw-big"))
        nbig = sum(1 for i in range(args.n) if kind_of("base", i) == "big")
        if big != kwbig or len(big) != nbig:
            raise ImapError("SEARCH LARGER 1000000 %s, SUBJECT kw-big %s, sent %d big"
                            % (sorted(big), sorted(kwbig), nbig))
        k = min(42, args.n - 1)
        one = uid_search(m, "HEADER", "Message-ID", msgid(user, "base", k))
        if len(one) != 1:
            raise ImapError("SEARCH HEADER Message-ID of message %d: %r" % (k, one))
        step = "FETCH"
        st = mailbox_state(m, "INBOX", True, user, stats)
        if len(st) != want or any(f for _, f in st.values()):
            raise ImapError("FETCH: %d messages, flagged on delivery: %d"
                            % (len(st), sum(1 for _, f in st.values() if f)))
        uid_mid = {uid: mid for mid, (uid, _) in st.items()}
        if uid_mid.get(one[0]) != msgid(user, "base", k):
            raise ImapError("SEARCH HEADER Message-ID found the wrong message")
        select(m, "INBOX")
        step = "STORE"
        # Chosen by message, not by UID (the shared messages' UIDs depend
        # on timing), so that every run, on ckfs or not, ends the same.
        def pick(mod, rem):
            return {u for u in uids if (lambda _, __, i: i % mod == rem)(*parse_msgid(uid_mid[u]))}
        seen, flagged, deleted = pick(3, 0), pick(7, 0), pick(10, 5)
        ok(*m.uid("STORE", ",".join(map(str, sorted(seen))), "+FLAGS.SILENT", "(\\Seen)"), "STORE \\Seen")
        ok(*m.uid("STORE", ",".join(map(str, sorted(flagged))), "+FLAGS.SILENT", "(\\Flagged $Label1)"),
           "STORE \\Flagged")
        if set(uid_search(m, "FLAGGED")) != flagged or set(uid_search(m, "SEEN")) != seen:
            raise ImapError("SEARCH FLAGGED/SEEN after STORE differ from what was stored")
        step = "COPY"
        ok(*m.uid("COPY", ",".join(map(str, sorted(flagged))), "Archive"), "COPY to Archive")
        step = "EXPUNGE"
        ok(*m.uid("STORE", ",".join(map(str, sorted(deleted))), "+FLAGS.SILENT", "(\\Deleted)"),
           "STORE \\Deleted")
        typ, data = m.expunge()
        ok(typ, data, "EXPUNGE")
        gone = [d for d in data if d is not None]
        if len(gone) != len(deleted):
            raise ImapError("EXPUNGE reported %d messages, %d were \\Deleted" % (len(gone), len(deleted)))
        n2 = select(m, "INBOX")
        if n2 != n - len(deleted):
            raise ImapError("after EXPUNGE: %d messages, want %d" % (n2, n - len(deleted)))

        def flags(uid):
            f = (["\\Seen"] if uid in seen else []) + (["$Label1", "\\Flagged"] if uid in flagged else [])
            return sorted(f)
        exp = {"INBOX": {uid_mid[u]: flags(u) for u in uids if u not in deleted},
               "Archive": {uid_mid[u]: flags(u) for u in sorted(flagged)}}
        step = "check"
        for box in ("Archive", "INBOX"):
            got = mailbox_state(m, box, box == "Archive", user, stats)
            diff = compare_box(exp[box], got)
            if diff:
                raise ImapError("%s after STORE/COPY/EXPUNGE: %s" % (box, diff))
        m.logout()
        with open(state_path(args, user), "w") as f:
            json.dump(exp, f)
        say("# %s: %d in INBOX (%d seen, %d flagged, %d expunged), %d copied to Archive"
            % (user, n2, len(seen), len(flagged), len(deleted), len(flagged)))
    except Exception as e:          # noqa: BLE001 - reported as a failure
        errors.append("%s: %s: %s: %s" % (user, step, type(e).__name__, e))


def compare_box(exp, got):
    """'' or a short description of how got {mid: (uid, flags)} differs
    from exp {mid: flags}."""
    missing = sorted(set(exp) - set(got))
    extra = sorted(set(got) - set(exp))
    wrong = sorted(k for k in set(exp) & set(got) if sorted(exp[k]) != got[k][1])
    if not (missing or extra or wrong):
        return ""
    return "%d missing %s, %d unexpected %s, %d with other flags %s" % (
        len(missing), missing[:3], len(extra), extra[:3], len(wrong),
        [(k, exp[k], got[k][1]) for k in wrong[:3]])


def run_users(fn, args, users):
    stats = {"msgs": 0, "bytes": 0}
    errors = []
    t0 = time.time()
    ts = [threading.Thread(target=fn, args=(args, u, stats, errors)) for u in users]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return stats, errors, time.time() - t0


def exercise(args):
    users = args.users.split(",")
    stats, errors, dt = run_users(exercise_user, args, users)
    result(not errors, "%s: IMAP for %s at once: LIST, CREATE, SELECT, SEARCH (ALL, LARGER, SUBJECT, HEADER), "
           "FETCH of every body (byte for byte), STORE, COPY, EXPUNGE, state as done"
           % (args.label, ",".join(users)), "; ".join(errors[:5]))


def verify_user(args, user, stats, errors):
    try:
        exp = load_expected(args, user)
        m = imap_login(args.imap, user)
        boxes = ok(*m.list(), "LIST")
        for box in exp:
            if not any(re.search(rb'"?' + box.encode() + rb'"?$', b) for b in boxes):
                raise ImapError("LIST: no %s in %r" % (box, boxes))
        t0 = time.time()
        for box in exp:
            got = mailbox_state(m, box, True, user, stats)
            diff = compare_box(exp[box], got)
            if diff:
                raise ImapError("%s: %s" % (box, diff))
        stats["secs_" + user] = time.time() - t0
        m.logout()
    except Exception as e:          # noqa: BLE001
        errors.append("%s: %s: %s" % (user, type(e).__name__, e))


def verify(args):
    users = args.users.split(",")
    stats, errors, dt = run_users(verify_user, args, users)
    if not errors:
        say("RATE %s fetched %d messages (%.1f MB) for %d users at once in %.2f s: %.1f msg/s, %.1f MB/s"
            % (args.label, stats["msgs"], stats["bytes"] / 1e6, len(users), dt,
               stats["msgs"] / dt, stats["bytes"] / 1e6 / dt))
    result(not errors, "%s: a new login for each of %s sees the expected folders, messages and flags, "
           "every body byte for byte (%d messages)" % (args.label, ",".join(users), stats["msgs"]),
           "; ".join(errors[:5]))


# ------------------------------------------------------------------ during revocation
def steady_user(args, user, stats, errors):
    """Until the stop file exists: deliver a message, find it over the open
    IMAP session and compare it, compare an older one, and every 5th round
    log in anew. Every error is logged (with the time) and the loop goes on
    with new connections."""
    rnd = random.Random(user)
    exp = load_expected(args, user)["INBOX"]
    old = sorted(exp)
    live = open(os.path.join(args.state, user + ".live"), "a")
    i = 0
    m = c = None
    while not os.path.exists(args.stop):
        i += 1
        step = "connect"
        try:
            if m is None:
                m = imap_login(args.imap, user)
                select(m, "INBOX", readonly=True)
            if c is None:
                c = lmtp_connect(args.lmtp)
            step = "LMTP"
            data = gen(user, "live", i)
            r = lmtp_send(c, [user], data)
            if r[user][0] != 250:
                raise ImapError("LMTP: %r" % (r[user],))
            mid = msgid(user, "live", i)
            live.write(mid + "\n")
            live.flush()
            stats["delivered"] = stats.get("delivered", 0) + 1
            step = "IMAP new"
            ok(*m.noop(), "NOOP")
            for mid2, data2 in ((mid, data), (rnd.choice(old), None)):
                u = uid_search(m, "HEADER", "Message-ID", mid2)
                if len(u) != 1:
                    raise ImapError("SEARCH HEADER Message-ID %s: %r" % (mid2, u))
                got = fetch(m, str(u[0]), "(UID BODY.PEEK[])")
                why = same_message(got[u[0]][1], data2 or regen(mid2))
                if why:
                    raise ImapError("%s: %s" % (mid2, why))
                stats["fetched"] = stats.get("fetched", 0) + 1
                step = "IMAP old"
            if i % 5 == 0:
                step = "new login"
                m2 = imap_login(args.imap, user)
                select(m2, "INBOX", readonly=True)
                mid2 = rnd.choice(old)
                u = uid_search(m2, "HEADER", "Message-ID", mid2)
                got = fetch(m2, str(u[0]), "(UID BODY.PEEK[])")
                why = same_message(got[u[0]][1], regen(mid2))
                if why:
                    raise ImapError("%s: %s" % (mid2, why))
                m2.logout()
                stats["logins"] = stats.get("logins", 0) + 1
        except Exception as e:          # noqa: BLE001
            msg = "%.3f %s: round %d: %s: %s: %s" % (time.time(), user, i, step, type(e).__name__, e)
            errors.append(msg)
            with open(args.errors, "a") as f:
                f.write(msg + "\n")
            for x in (m, c):
                try:
                    x and x.close()
                except Exception:       # noqa: BLE001
                    pass
            m = c = None
            time.sleep(0.5)
        time.sleep(0.05)
    for x in (m, c):
        try:
            x and (x.logout() if x is m else x.quit())
        except Exception:               # noqa: BLE001
            pass
    say("# steady %s: %d delivered, %d fetched and compared, %d new logins, %d errors"
        % (user, stats.get("delivered", 0), stats.get("fetched", 0), stats.get("logins", 0),
           sum(1 for e in errors if (" %s:" % user) in e)))


def steady(args):
    users = args.users.split(",")
    per = {}

    def one(args, u, stats, errors):
        per[u] = {}
        steady_user(args, u, per[u], errors)
    stats, errors, dt = run_users(one, args, users)
    ok_ = not errors and all(per[u].get("delivered", 0) > 0 for u in users)
    result(ok_, "%s kept receiving (LMTP) and reading (IMAP, open sessions and new logins) with no error for %.0f s "
           "(%s)" % (",".join(users), dt, ", ".join("%s %d/%d/%d" % (u, per[u].get("delivered", 0),
                                                                       per[u].get("fetched", 0), per[u].get("logins", 0))
                                                   for u in users)),
           "%d errors, first: %s" % (len(errors), errors[:3]))
    sys.exit(0 if ok_ else 1)


def describe(e):
    """(answered, text): answered when Dovecot said NO, BAD or BYE, not
    when the connection just dropped or timed out."""
    if isinstance(e, (ImapError, imaplib.IMAP4.error)) and not isinstance(e, imaplib.IMAP4.abort):
        return True, "NO/BAD: %s" % e
    if isinstance(e, imaplib.IMAP4.abort):
        dropped = "socket error" in str(e) or "EOF" in str(e)
        return not dropped, "%s: %s" % ("connection dropped" if dropped else "BYE", e)
    return False, "%s: %s" % (type(e).__name__, e)


def revoked(args):
    """Carol: an open session fails within key_ttl + margin of t0 (when the
    customer's keys were taken away), then new logins and deliveries fail;
    every call answers (socket timeouts), nothing hangs."""
    user = args.user
    exp = load_expected(args, user)["INBOX"]
    mids = sorted(exp)
    rnd = random.Random(7)
    m = imap_login(args.imap, user)
    st = mailbox_state(m, "INBOX", False, user)
    uids = sorted(uid for uid, _ in st.values())
    select(m, "INBOX", readonly=True)
    got = fetch(m, str(uids[0]), "(UID BODY.PEEK[])")
    first = [mid for mid, (uid, _) in st.items() if uid == uids[0]][0]
    good = sorted(st) == mids and not same_message(got[uids[0]][1], regen(first))
    result(good, "%s: open IMAP session reads a message before the revocation" % user)
    open(args.t0 + ".ready", "w").close()
    deadline = time.time() + 120
    while not os.path.exists(args.t0) and time.time() < deadline:
        time.sleep(0.05)
    t0 = float(open(args.t0).read())
    limit = args.ttl + args.margin
    failed = None
    rounds = 0
    while time.time() - t0 < limit + 20:
        rounds += 1
        uid = rnd.choice(uids)
        c0 = time.time()
        try:
            got = fetch(m, str(uid), "(UID BODY.PEEK[])")
            if uid not in got:
                raise ImapError("UID FETCH %d: no such message in the answer" % uid)
        except Exception as e:          # noqa: BLE001
            failed = (time.time() - t0, time.time() - c0) + describe(e)
            break
        time.sleep(0.1)
    if failed:
        say("# %s: open session: FETCH failed %.2f s after the keys were taken away (the call took %.2f s): %s"
            % (user, failed[0], failed[1], failed[3]))
        with open(os.path.join(args.state, "notes"), "a") as f:
            f.write("customer-side revocation (key_ttl=%g) -> carol's open IMAP session fails: %.2f s\n"
                    % (args.ttl, failed[0]))
    result(failed is not None and failed[0] <= limit and failed[1] < TIMEOUT and failed[2],
           "%s: the open IMAP session's FETCH fails within key_ttl + %g s, Dovecot answers (%s)"
           % (user, args.margin, "%.2f s, %s" % (failed[0], failed[3][:160]) if failed else "still served"),
           "after %d rounds" % rounds)
    try:
        m.logout()
    except Exception:                   # noqa: BLE001
        pass
    # New logins: LOGIN, SELECT or FETCH must fail, with an answer.
    c0 = time.time()
    how, answered = None, False
    try:
        m2 = imap_login(args.imap, user)
        try:
            select(m2, "INBOX", readonly=True)
            got = fetch(m2, str(uids[0]), "(UID BODY.PEEK[])")
            how = "served"
        finally:
            try:
                m2.logout()
            except Exception:           # noqa: BLE001
                pass
    except Exception as e:              # noqa: BLE001
        answered, how = describe(e)
    dt = time.time() - c0
    say("# %s: new login: %s (%.2f s)" % (user, how, dt))
    result(how != "served" and answered and dt < TIMEOUT,
           "%s: a new IMAP login fails with an answer from Dovecot (%.2f s: %s)" % (user, dt, how[:160]))
    # Deliveries to carol fail too (temporary or permanent LMTP error).
    c0 = time.time()
    try:
        c = lmtp_connect(args.lmtp)
        r = lmtp_send(c, [user], gen(user, "after", 1))[user]
        c.quit()
        how = "%d %s" % (r[0], r[1].decode(errors="replace"))
        good = r[0] != 250
    except Exception as e:              # noqa: BLE001
        how = "%s: %s" % (type(e).__name__, e)
        good = isinstance(e, smtplib.SMTPResponseException)
    dt = time.time() - c0
    result(good and dt < TIMEOUT, "%s: an LMTP delivery is refused with an answer (%.2f s: %s)" % (user, dt, how[:160]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd")
    ap.add_argument("--imap", type=int)
    ap.add_argument("--lmtp", type=int)
    ap.add_argument("--users", default="alice,bob,carol")
    ap.add_argument("--user")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--shared", type=int, default=10)
    ap.add_argument("--state")
    ap.add_argument("--label", default="ckfs")
    ap.add_argument("--stop")
    ap.add_argument("--errors")
    ap.add_argument("--t0")
    ap.add_argument("--ttl", type=float, default=3)
    ap.add_argument("--margin", type=float, default=7)
    args = ap.parse_args()
    {"deliver": deliver, "exercise": exercise, "verify": verify,
     "steady": steady, "revoked": revoked}[args.cmd](args)


if __name__ == "__main__":
    main()
