#!/usr/bin/env python3
"""Write README.md from nbs/index.ipynb (quarto-free), or check that it is in sync.

Usage: python .ci/readme.py          # rewrite README.md
       python .ci/readme.py --check  # exit 1 (with a diff) when README.md is out of date

Rules: markdown cells are copied as they are; code cells become ```python blocks with their
`#|` directive lines removed, followed by their text output; cells marked `#| hide` are left out.
"""
import difflib, json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NB, README = ROOT/'nbs'/'index.ipynb', ROOT/'README.md'
HEADER = '<!-- Generated from nbs/index.ipynb by .ci/readme.py: edit the notebook, not this file. -->\n\n'

def _src(cell): return ''.join(cell['source']) if isinstance(cell['source'], list) else cell['source']

def _directives(src):
    "Directive names at the top of a code cell, e.g. {'hide', 'eval:'}."
    out = set()
    for line in src.splitlines():
        s = line.strip()
        if not s.startswith('#|'): break
        out.add(s[2:].strip().split(' ')[0])
    return out

def _outputs(cell):
    "Plain-text output of a code cell (streams and text/plain results)."
    texts = []
    for o in cell.get('outputs', []):
        if o.get('output_type') == 'stream' and o.get('name') == 'stdout': texts.append(''.join(o['text']))
        elif 'text/plain' in o.get('data', {}): texts.append(''.join(o['data']['text/plain']))
    return ''.join(texts).rstrip()

def render(nb_path=NB):
    "The README text for the notebook at `nb_path`."
    nb = json.loads(Path(nb_path).read_text(encoding='utf-8'))
    parts = []
    for cell in nb['cells']:
        src = _src(cell).strip('\n')
        if cell['cell_type'] == 'markdown': parts.append(src)
        elif cell['cell_type'] == 'code':
            d = _directives(src)
            if 'hide' in d or ('include:' in d and '#| include: false' in src): continue
            code = '\n'.join(l for l in src.splitlines() if not l.strip().startswith('#|')).strip('\n')
            if not code: continue
            parts.append(f'```python\n{code}\n```')
            out = _outputs(cell)
            if out: parts.append(f'```\n{out}\n```')
    return HEADER + '\n\n'.join(p for p in parts if p) + '\n'

def main(argv):
    new = render()
    if '--check' in argv:
        old = README.read_text(encoding='utf-8') if README.exists() else ''
        if old != new:
            sys.stderr.write('README.md is out of date with nbs/index.ipynb; run: python .ci/readme.py\n')
            sys.stderr.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                       'README.md', 'render(nbs/index.ipynb)'))
            return 1
        print('README.md is in sync with nbs/index.ipynb')
        return 0
    README.write_text(new, encoding='utf-8')
    print(f'wrote {README.relative_to(ROOT)}')
    return 0

if __name__ == '__main__': sys.exit(main(sys.argv[1:]))
