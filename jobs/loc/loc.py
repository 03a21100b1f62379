#!/usr/bin/env python3
"""python3 jobs/loc/loc.py FILE...: per file, total lines and code lines (not blank, not only a
comment; docs/code-size.md)."""
import re, sys
tot_all = tot_code = 0
for f in sys.argv[1:]:
    src = open(f).read()
    lines = src.split('\n')
    if lines and lines[-1] == '': lines.pop()
    # blank out comments, keep newlines
    def strip(m):
        s = m.group(0)
        return s if s.startswith('"') or s.startswith("'") else re.sub(r'[^\n]', ' ', s)
    nocom = re.sub(r'"(\\.|[^"\\])*"|\'(\\.|[^\'\\])*\'|/\*.*?\*/|//[^\n]*', strip, src, flags=re.S)
    code = sum(1 for l in nocom.split('\n')[:len(lines)] if l.strip())
    print(f"{len(lines):6d} {code:6d}  {f}")
    tot_all += len(lines); tot_code += code
print(f"{tot_all:6d} {tot_code:6d}  total (lines, code lines)")
