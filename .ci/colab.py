"""The Colab set-up cell of the notebooks: one definition here, written into every notebook.

    python .ci/colab.py --write   # put CELL (with settings.ini's git_url) into every notebook
    python .ci/colab.py --check   # fail if a notebook's set-up cell differs from CELL (CI runs this)

Every notebook under nbs/ (index.ipynb and `_*` notebooks excepted) carries the cell as its first code cell after
`#| default_exp` (or its very first cell when it exports nothing). It is visible: a learner sees what is installed.
It also turns on the quick setting of srgan_nb.download (`slow` cells skipped, no download over QUICK_MAX_MB).
"""
import configparser, json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK = '# Colab: install srgan_nb'

CELL = '''# Colab: install srgan_nb (library, weights, sample images, the notebooks' tools) and work in its nbs/ folder.
# Anywhere else this cell does nothing: there, install with `pip install -e ".[dev]"` as the README says.
import os, sys, subprocess
if 'google.colab' in sys.modules:
    repo = os.environ.get('SRGAN_NB_REPO', '{git_url}')
    home = os.environ.get('SRGAN_NB_HOME', '/content/srgan_nb')
    if not os.path.isdir(home): subprocess.run(['git', 'clone', '-q', repo, home], check=True)
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '-e', f'{{home}}[dev]'], check=True)
    os.chdir(f'{{home}}/nbs'); sys.path.insert(0, home)
    # the quick setting: cells flagged `slow` are skipped, as nbdev_test skips them (FULL = True runs them)
    os.environ.setdefault('SRGAN_NB_QUICK', '1'); from srgan_nb.download import colab_quick_setting; colab_quick_setting()'''


def cell_text(root=ROOT):
    "The set-up cell with the repository address from settings.ini."
    cfg = configparser.ConfigParser()
    cfg.read(root/'settings.ini')
    return CELL.format(git_url=cfg['DEFAULT']['git_url'])


def notebooks(root=ROOT):
    return sorted(p for p in (root/'nbs').glob('*.ipynb') if not p.name.startswith('_') and p.name != 'index.ipynb')


def _where(cells):
    "Index of the set-up cell: the first code cell that is not `#| default_exp`."
    for i, c in enumerate(cells):
        if c['cell_type'] == 'code' and not ''.join(c['source']).lstrip().startswith('#| default_exp'): return i
    return len(cells)


def _lines(t):
    ls = t.split('\n')
    return [l + '\n' for l in ls[:-1]] + [ls[-1]]


def write(root=ROOT):
    text = cell_text(root)
    for p in notebooks(root):
        nb = json.loads(p.read_text())
        cells = nb['cells']
        old = next((i for i, c in enumerate(cells[:3]) if c['cell_type'] == 'code' and 'google.colab' in ''.join(c['source'])), None)
        cid = cells[old]['id'] if old is not None else 'c01ab5e7'
        if old is not None: del cells[old]
        cells.insert(_where(cells), dict(cell_type='code', execution_count=None, id=cid, metadata={}, outputs=[], source=_lines(text)))
        p.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    return 0


def check(root=ROOT):
    text, bad = cell_text(root), []
    for p in notebooks(root):
        cells = json.loads(p.read_text())['cells']
        i = _where(cells)
        if i >= len(cells) or ''.join(cells[i]['source']) != text: bad.append(p.name)
    if bad:
        print(f"the Colab set-up cell is missing or differs from .ci/colab.py in: {', '.join(bad)}; run python .ci/colab.py --write")
        return 1
    return 0


if __name__ == '__main__':
    if sys.argv[1:] == ['--write']: sys.exit(write())
    if sys.argv[1:] == ['--check']: sys.exit(check())
    print(__doc__); sys.exit(2)
