"""Re-execute the notebooks in reading order and save each with its outputs (pictures, tables, numbers), as a reader
on GitHub sees them. Cells flagged `slow` or `online` are left out (as `nbdev_test` does), unless `--flags` asks.

    python .ci/execute.py                 # every notebook
    python .ci/execute.py 09_release      # some of them (names or paths)
Then run `nbdev_clean` (it keeps outputs: settings.ini has clear_all = False) and commit."""
import argparse, json, os, re, sys, time
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT/'nbs'

def directives(cell):
    "The `#| flag` words at the top of a code cell."
    res = set()
    for line in cell.source.splitlines():
        s = line.strip()
        if not s.startswith('#|'): break
        res.update(s[2:].replace(':', ' ').split())
    return res

# What a learner reading the saved outputs does not have: this machine's temporary folders, caches, data folder and
# virtual environment. `scrub` rewrites them in saved outputs; .ci/check_outputs.py fails if any is left.
MACHINE_PATHS = [(re.compile(r'/tmp/[\w.-]+/'), 'tmp/'), (re.compile(r'/root/\.cache/'), '~/.cache/'),
                 (re.compile(r'(?:/work|\.\.)/shared/data/'), '')]
WARNING_LINE = re.compile(r'^\S*site-packages/\S+:\d+: \w*Warning')   # a library's warning, with its file path

def scrub_text(t):
    "Output text without this machine's paths, and without library warnings (their two lines) that carry them."
    lines, out, skip = t.split('\n'), [], False
    for l in lines:
        if WARNING_LINE.match(l): skip = True; continue
        if skip and l.startswith('  '): skip = False; continue      # the warning's source line
        skip = False
        for pat, rep in MACHINE_PATHS: l = pat.sub(rep, l)
        out.append(l)
    return '\n'.join(out)

def scrub(nb_path):
    "Rewrite the saved outputs of the notebook file `nb_path` with `scrub_text`; drop outputs left empty."
    nb = json.loads(Path(nb_path).read_text())
    for c in nb['cells']:
        if c['cell_type'] != 'code': continue
        keep = []
        for o in c.get('outputs', []):
            if 'text' in o:
                o['text'] = scrub_text(''.join(o['text'])).splitlines(keepends=True)
                if not ''.join(o['text']).strip(): continue
            if 'text/plain' in o.get('data', {}): o['data']['text/plain'] = scrub_text(''.join(o['data']['text/plain'])).splitlines(keepends=True)
            keep.append(o)
        c['outputs'] = keep
    Path(nb_path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')

def execute(fn, skip=('slow', 'online')):
    "Run notebook `fn` top to bottom in its folder, keeping the outputs; returns seconds. Raises on the first error."
    nb = read_nb(fn)
    def no_eval(cell):
        if cell.cell_type != 'code': return True
        d = directives(cell)
        return bool(d & set(skip)) or ('eval' in d and 'false' in d)
    shell = CaptureShell(fn)
    shell.run_cell("import matplotlib as _mpl; _mpl.rcParams['figure.dpi'] = 72; _mpl.rcParams['savefig.dpi'] = 72")
    t0, cwd = time.time(), os.getcwd()
    os.chdir(fn.parent)
    try:
        for c in nb.cells:
            if c.cell_type == 'code' and no_eval(c): c.outputs, c.execution_count = [], None
        shell.run_all(nb, exc_stop=True, preproc=no_eval)
    finally: os.chdir(cwd)
    write_nb(nb, fn)
    scrub(fn)
    return time.time() - t0

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('names', nargs='*', help='notebooks to run (default: all, in reading order)')
    p.add_argument('--flags', default='', help='flags to run as well, e.g. "slow"')
    p.add_argument('--scrub-only', action='store_true', help='only rewrite the saved outputs without machine paths')
    a = p.parse_args(argv)
    os.environ['IN_TEST'] = '1'       # widgets draw their static fallback, as under nbdev_test
    fns = sorted(f for f in NBS.glob('*.ipynb') if not f.name.startswith('_'))
    if a.names: fns = [f for f in fns if any(n in (f.stem, f.name, str(f)) or f.stem.startswith(n) for n in a.names)]
    if a.scrub_only:
        for f in fns: scrub(f)
        return 0
    skip = tuple(f for f in ('slow', 'online') if f not in a.flags.split())
    total = 0
    for f in fns:
        try: dt = execute(f, skip)
        except Exception as e:
            print(f"{f.name}: FAILED ({type(e).__name__}: {str(e)[:300]})", file=sys.stderr); return 1
        total += dt; print(f"{f.name}: {dt:.0f} s", flush=True)
    print(f"{len(fns)} notebooks in {total:.0f} s")
    return 0

if __name__ == '__main__': sys.exit(main())
