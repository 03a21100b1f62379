#!/usr/bin/env python3
"""python3 jobs/loc/feature_lines.py [REV] (from the repository root; docs/code-size.md): how many lines of src/fl + src/agg at REV implement the capabilities the
four-loop code had (74861ef~1: 3,261 lines), and how many implement capabilities added since.

Every line is attributed by `git blame -w -M` to the commit that last wrote it, looking through
the behaviour-preserving clean-up commits listed in cleanup_commits.txt (--ignore-revs-file: a
line a clean-up rewrote counts for the commit before it). A line is a feature line when that
commit is listed in feature_commits.txt, or when its file exists only for a new feature
(FEATURE_FILES). Prints per file: lines, feature lines, lines for the baseline's features, and the same three
for code lines (not blank, not only a comment). The baseline: 3,261 lines, 2,941 code lines."""
import os, re, subprocess, sys, tempfile
rev = sys.argv[1] if len(sys.argv) > 1 else 'HEAD'
here = os.path.dirname(os.path.abspath(__file__))
FEATURE_FILES = {'src/agg/compress.c', 'src/agg/robust.c', 'src/fl/async_sa.h', 'src/fl/async_secagg.c',
                 'src/fl/compress_stage.c', 'src/fl/embed.c', 'src/fl/gnn_run.c', 'src/fl/robust_round.c'}
def hashes(name):
    out = {}
    for l in open(os.path.join(here, name)):
        if l.startswith('#') or not l.strip(): continue
        toks = l.split() if name.startswith('cleanup') else l.split()[:1]
        for h in toks:
            out[subprocess.check_output(['git', 'rev-parse', h], text=True).strip()] = l.strip()
    return out
feat, clean = hashes('feature_commits.txt'), hashes('cleanup_commits.txt')
ign = tempfile.NamedTemporaryFile('w', delete=False)
ign.write(''.join(h + '\n' for h in clean)); ign.close()
files = [f for f in subprocess.check_output(['git', 'ls-tree', '-r', '--name-only', rev, '--', 'src/fl', 'src/agg'],
                                             text=True).split() if f.endswith(('.c', '.h'))]
def code_mask(src):
    """Per line: 1 when it holds code (not blank, not only a comment)."""
    def blank(m):
        t = m.group(0)
        return t if t[0] in '"\'' else re.sub(r'[^\n]', ' ', t)
    s = re.sub(r'"(\\.|[^"\\])*"|\'(\\.|[^\'\\])*\'|/\*.*?\*/|//[^\n]*', blank, src, flags=re.S)
    return [1 if l.strip() else 0 for l in s.split('\n')]
tot = [0, 0, 0, 0]
for f in files:
    mask = code_mask(subprocess.check_output(['git', 'show', f'{rev}:{f}'], text=True))
    out = subprocess.check_output(['git', 'blame', '-w', '-M', '--ignore-revs-file', ign.name, '--line-porcelain',
                                   rev, '--', f], text=True)
    n = nf = c = cf = 0
    for line in out.split('\n'):
        h = line[:40]
        if len(h) == 40 and line[40:41] == ' ' and all(c in '0123456789abcdef' for c in h):
            isf = f in FEATURE_FILES or h in feat
            code = mask[n]
            n += 1
            nf += isf
            c += code
            cf += code and isf
    print(f"{n:6d} {nf:6d} {n - nf:6d} | {c:6d} {cf:6d} {c - cf:6d}  {f}")
    for i, v in enumerate((n, nf, c, cf)): tot[i] += v
os.unlink(ign.name)
print(f"{tot[0]:6d} {tot[1]:6d} {tot[0] - tot[1]:6d} | {tot[2]:6d} {tot[3]:6d} {tot[2] - tot[3]:6d}  total")
print("columns: lines, feature lines, lines for the baseline's features | the same for code lines (not blank, "
      "not only a comment)")
