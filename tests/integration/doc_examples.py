#!/usr/bin/env python3
"""doc_examples.py -- the examples of raced's docs, for doc_examples.sh.

  extract SOURCE_DIR OUT_DIR     write each example to OUT_DIR/NNN/
  transcript SOCKET BLOCK_FILE   replay a '->'/'<-' transcript on the socket
  shape BLOCK_FILE REPLY_FILE    the fields a jsonc block names, in a reply
  merge BASE FRAGMENT            BASE (a raced.conf) with FRAGMENT's keys

Where examples are (doc_examples.sh's header says how to mark one):
  - Markdown (MARKDOWN below): every fenced block tagged sh (or shell,
    bash, console) is a command example; a block tagged otherwise is one
    only when a marker says what it is (kind=transcript, kind=shape).
  - Man pages (docs/*.1, *.5, *.8): every .EX ... .EE block of an EXAMPLE
    or EXAMPLES section.
A marker is the line right before the block (blank lines between allowed;
a marker before anything else is an error):
'<!-- doc-test: WORDS -->' in Markdown, '.\\" doc-test: WORDS' in roff
(before .EX; .RS/.PP lines between are fine).  WORDS are shell words,
key=value each; this script only splits them (shlex) and checks the key
names, doc_examples.sh gives them their meaning.

A block that is not an example but looks like commands (a line starting
'racectl ', 'raced ', '$ ' or '# ' followed by one of them) is an error:
tag it sh, or mark it, so no command goes unchecked by being untagged.

Each example's directory holds: where (FILE:LINE of its first line), kind
(command, transcript, shape, config, fragment), block (its text, roff escapes
undone), words (the marker's words, one a line).
"""
import glob
import json
import os
import re
import shlex
import socket
import sys

# The Markdown files whose examples are run, relative to the source root.
MARKDOWN = ["README.md", "docs/operations.md", "docs/control-protocol.md"]
MAN_GLOBS = ["docs/*.1", "docs/*.5", "docs/*.8"]
COMMAND_TAGS = {"sh", "shell", "bash", "console"}
KEYS = {"kind", "skip", "state", "exit", "line", "noline", "interrupt", "cmd", "needs"}
KINDS = {"command", "transcript", "shape", "config", "fragment"}
LOOKS_LIKE_COMMAND = re.compile(r"^\s*(\$ |# )?(racectl|raced|systemctl|sudo|printf|python3|socat|meson)\s")
MD_MARKER = re.compile(r"^\s*<!--\s*doc-test:(.*?)-->\s*$")
ROFF_MARKER = re.compile(r'^\.\\"\s*doc-test:(.*)$')


class DocError(Exception):
    pass


def parse_words(text, where):
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise DocError(f"{where}: doc-test marker: {e}")
    for w in words:
        key = w.split("=", 1)[0]
        if "=" not in w or key not in KEYS:
            raise DocError(f"{where}: doc-test marker: '{w}' is not KEY=VALUE with KEY one of "
                           f"{', '.join(sorted(KEYS))}")
        if key == "kind" and w.split("=", 1)[1] not in KINDS:
            raise DocError(f"{where}: doc-test marker: kind must be one of {', '.join(sorted(KINDS))}")
    return words


def markdown_examples(path, rel):
    lines = open(path, encoding="utf-8").read().split("\n")
    out, i, marker, marker_line = [], 0, None, 0
    while i < len(lines):
        line = lines[i]
        m = MD_MARKER.match(line)
        fence = re.match(r"^(\s*)(```+|~~~+)\s*([^`\s]*)", line)
        if m:
            marker, marker_line = m.group(1), i + 1
        elif fence:
            indent, ticks, tag = fence.group(1), fence.group(2), fence.group(3)
            body, j = [], i + 1
            while j < len(lines) and not lines[j].strip().startswith(ticks):
                body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
                j += 1
            if j == len(lines):
                raise DocError(f"{rel}:{i + 1}: a fenced block that never ends")
            where = f"{rel}:{i + 2}"
            words = parse_words(marker, f"{rel}:{marker_line}") if marker is not None else []
            if tag in COMMAND_TAGS or marker is not None:
                kind = next((w[5:] for w in words if w.startswith("kind=")), "command")
                out.append((where, kind, "\n".join(body) + "\n", words))
            elif any(LOOKS_LIKE_COMMAND.match(b) for b in body):
                raise DocError(f"{where}: a block tagged '{tag}' shows commands: tag it sh, or put "
                               f"'<!-- doc-test: skip=\"WHY\" -->' before it")
            marker, i = None, j
        elif line.strip() and marker is not None:
            raise DocError(f"{rel}:{marker_line}: a doc-test marker not followed by a fenced block")
        i += 1
    return out


ROFF_ESCAPES = [(r"\-", "-"), (r"\(aq", "'"), (r"\(dq", '"'), (r"\(em", "\u2014"),
                (r"\(en", "\u2013"), (r"\&", ""), (r"\ ", " "), (r"\e", "\\")]


def unroff(line):
    out, i = [], 0
    while i < len(line):
        for esc, rep in ROFF_ESCAPES:
            if line.startswith(esc, i):
                out.append(rep)
                i += len(esc)
                break
        else:
            out.append(line[i])
            i += 1
    return "".join(out)


def man_examples(path, rel):
    lines = open(path, encoding="utf-8").read().split("\n")
    out, in_examples, marker, marker_line, i = [], False, None, 0, 0
    while i < len(lines):
        line = lines[i]
        m = ROFF_MARKER.match(line)
        if line.startswith(".SH") and marker is not None:
            raise DocError(f"{rel}:{marker_line}: a doc-test marker not followed by an .EX block")
        if line.startswith(".SH"):
            in_examples = line.split(None, 1)[1:] in (["EXAMPLE"], ["EXAMPLES"])
            marker = None
        elif m:
            marker, marker_line = m.group(1), i + 1
        elif in_examples and line.startswith(".EX"):
            body, j = [], i + 1
            while j < len(lines) and not lines[j].startswith(".EE"):
                if not lines[j].startswith("."):
                    body.append(unroff(lines[j]))
                j += 1
            words = parse_words(marker, f"{rel}:{marker_line}") if marker is not None else []
            kind = next((w[5:] for w in words if w.startswith("kind=")), "command")
            out.append((f"{rel}:{i + 2}", kind, "\n".join(body) + "\n", words))
            marker, i = None, j
        elif line.strip() and marker is not None and not re.match(r"^\.(RS|RE|PP|P|LP)\b", line):
            raise DocError(f"{rel}:{marker_line}: a doc-test marker not followed by an .EX block"
                           + ("" if in_examples else " of an EXAMPLES section"))
        i += 1
    return out


def extract(src, out_dir):
    examples = []
    for rel in MARKDOWN:
        examples += markdown_examples(os.path.join(src, rel), rel)
    for g in MAN_GLOBS:
        for path in sorted(glob.glob(os.path.join(src, g))):
            examples += man_examples(path, os.path.relpath(path, src))
    for n, (where, kind, block, words) in enumerate(examples, 1):
        d = os.path.join(out_dir, f"{n:03d}")
        os.makedirs(d)
        for name, text in (("where", where + "\n"), ("kind", kind + "\n"), ("block", block),
                           ("words", "".join(w + "\n" for w in words))):
            with open(os.path.join(d, name), "w", encoding="utf-8") as f:
                f.write(text)
    print(len(examples))


def same_shape(doc, got, path, exact):
    """Every field doc names is in got, with a value of the same JSON type
    (a null in doc stands for any value); with exact, its strings and
    booleans equal too.  Numbers are never compared: ids, counts and rates
    differ from run to run."""
    if doc is None:
        return []
    if isinstance(doc, dict):
        if not isinstance(got, dict):
            return [f"{path or '.'}: the doc shows an object, the reply has {json.dumps(got)}"]
        errs = []
        for k, v in doc.items():
            if k not in got:
                errs.append(f"{path}.{k}: named in the doc, not in the reply")
            else:
                errs += same_shape(v, got[k], f"{path}.{k}", exact)
        return errs
    if isinstance(doc, list):
        if not isinstance(got, list):
            return [f"{path}: the doc shows an array, the reply has {json.dumps(got)}"]
        if doc and not got:
            return [f"{path}: the doc shows elements, the reply's array is empty"]
        errs = []
        for i, v in enumerate(doc):
            errs += same_shape(v, got[min(i, len(got) - 1)], f"{path}[{i}]", exact)
        return errs
    if isinstance(doc, bool) or isinstance(got, bool):
        if type(doc) is not type(got):
            return [f"{path}: the doc shows {json.dumps(doc)}, the reply has {json.dumps(got)}"]
        return [] if not exact or doc == got else [f"{path}: the doc shows {json.dumps(doc)}, the reply has {json.dumps(got)}"]
    if isinstance(doc, (int, float)):
        if not isinstance(got, (int, float)):
            return [f"{path}: the doc shows a number, the reply has {json.dumps(got)}"]
        return []
    if not isinstance(got, str):
        return [f"{path}: the doc shows a string, the reply has {json.dumps(got)}"]
    if exact and doc != got:
        return [f"{path}: the doc shows {json.dumps(doc)}, the reply has {json.dumps(got)}"]
    return []


def transcript(sock_path, block_file):
    """Send each '->' line, read one reply line for it, and compare it with the
    '<-' line the doc shows: same fields, same strings and booleans, numbers
    of any value."""
    lines = [l for l in open(block_file, encoding="utf-8").read().split("\n") if l.strip()]
    pairs, errs = [], []
    for l in lines:
        if l.startswith("-> "):
            pairs.append([l[3:], None])
        elif l.startswith("<- ") and pairs and pairs[-1][1] is None:
            pairs[-1][1] = l[3:]
        else:
            errs.append(f"not a '-> request' or '<- reply' line: {l}")
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sock_path)
    f = s.makefile("rwb")
    for req, want in pairs:
        f.write(req.encode() + b"\n")
        f.flush()
        got = f.readline().decode()
        print(f"-> {req}\n<- {got.rstrip()}")
        if want is None:
            continue
        errs += same_shape(json.loads(want), json.loads(got), "", True)
    for e in errs:
        print("FAIL:", e)
    return 1 if errs else 0


def strip_jsonc(text):
    """The text without // comments (outside strings)."""
    out, in_str, esc, i = [], False, False, 0
    while i < len(text):
        c = text[i]
        if in_str:
            out.append(c)
            esc = c == "\\" and not esc
            if c == '"' and not esc:
                in_str = False
        elif c == '"':
            in_str, esc = True, False
            out.append(c)
        elif text.startswith("//", i):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def shape(block_file, reply_file):
    doc = json.loads(strip_jsonc(open(block_file, encoding="utf-8").read()))
    reply = json.loads(open(reply_file, encoding="utf-8").readline())
    if not reply.get("ok"):
        print(f"FAIL: the reply is an error: {json.dumps(reply)}")
        return 1
    errs = same_shape(doc, reply["result"], "", False)
    for e in errs:
        print("FAIL:", e)
    return 1 if errs else 0


def ini_sections(text):
    """[(header line or None, [lines])] in order."""
    out = [(None, [])]
    for line in text.split("\n"):
        if line.strip().startswith("["):
            out.append((line.strip(), []))
        elif line.strip():
            out[-1][1].append(line)
    return out


def ini_key(line):
    return line.split("=", 1)[0].strip() if "=" in line and not line.lstrip().startswith(("#", ";")) else None


def merge(base_file, fragment_file):
    """Print BASE with FRAGMENT's keys set: a section of both gets the
    fragment's lines in place of its own for the same keys, a new section
    is added at the end."""
    base = ini_sections(open(base_file, encoding="utf-8").read())
    for header, lines in ini_sections(open(fragment_file, encoding="utf-8").read()):
        if header is None:
            if any(ini_key(l) for l in lines):
                raise DocError("a configuration fragment sets keys before its first [section]")
            continue
        keys = {ini_key(l) for l in lines} - {None}
        for h, blines in base:
            if h == header:
                blines[:] = [l for l in blines if ini_key(l) not in keys] + lines
                break
        else:
            base.append((header, lines))
    for header, lines in base:
        if header:
            print(header)
        print("\n".join(lines))


def main(argv):
    try:
        if len(argv) == 4 and argv[1] == "extract":
            extract(argv[2], argv[3])
            return 0
        if len(argv) == 4 and argv[1] == "transcript":
            return transcript(argv[2], argv[3])
        if len(argv) == 4 and argv[1] == "shape":
            return shape(argv[2], argv[3])
        if len(argv) == 4 and argv[1] == "merge":
            merge(argv[2], argv[3])
            return 0
    except DocError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
