"""Run notebooks the way a Colab learner meets them: only the visible set-up cell installs srgan_nb.

    python .ci/colab_sim.py    # from the repository root; CI runs it (.ci/run)

Every notebook starts with the set-up cell of .ci/colab.py. In Colab it clones the repository, installs it with its
[dev] extras (nbdev for show_doc, ...) and works in its nbs/ folder; nowhere else does it do anything, so the ordinary
CI run never executes it. This script executes it, in a temporary folder that is removed at the end:
  1. a local clone of the committed HEAD plays the GitHub repository (SRGAN_NB_REPO points at it);
  2. a fresh venv holds only what Colab preinstalls (torch, torchvision, fastai, matplotlib, pandas, pillow, IPython);
  3. an IPython startup file puts a stub `google.colab` module in sys.modules, as Colab's kernel has one;
  4. the notebooks, copied into an empty folder outside any clone, run top to bottom in that venv's IPython
     (code cells in order as one .ipy script; cells flagged with settings.ini's tst_flags or `#| eval: false` are
     left out and IN_TEST=1 is set, as nbdev_test does). IPython stops at the first exception with exit code 1.
It exits non-zero naming the step or notebook that failed and showing the tail of its output.
"""
import configparser, json, os, re, shutil, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ['00_data', '08_upscale']
COLAB_PACKAGES = 'torch torchvision fastai matplotlib pandas pillow ipython ipykernel'.split()
DIRECTIVE = re.compile(r'^\s*#\s*\|(.*)$')

# Colab's kernel has `google.colab` imported. Attach the stub to a real `google` namespace package (protobuf, ...)
# when there is one; else make `google` a package whose path lets packages installed later (protobuf) import.
STARTUP = '''import sys, types
try:
    import google
except ImportError:
    google = types.ModuleType('google')
    google.__path__ = [p + '/google' for p in sys.path if p]
    sys.modules['google'] = google
google.colab = sys.modules['google.colab'] = types.ModuleType('google.colab')
'''
# Checked in the fresh venv before the notebooks: the stub is there, and an exception stops the script, exit code != 0.
PROBE = 'import sys\nprint("google.colab stub:", "google.colab" in sys.modules)\nraise RuntimeError("deliberate")\nprint("after" + " the error")\n'


class Failed(Exception): pass


def run(what, cmd, log, **kw):
    "Run `cmd` with its output in the file `log`; return (exit code, output). Prints how long it took."
    t = time.time()
    with open(log, 'w') as f: rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, **kw).returncode
    print(f'{what}: {time.time() - t:.0f} s', flush=True)
    return rc, Path(log).read_text(errors='replace')


def check(what, rc, out, lines=60):
    if rc != 0: raise Failed(f'{what} failed (exit code {rc}); the last lines of its output:\n' + '\n'.join(out.splitlines()[-lines:]))


def directives(src):
    "nbdev directives in the leading comment lines of a cell: {'slow': [], 'eval': ['false'], ...}."
    res = {}
    for line in src.splitlines():
        if not line.strip(): continue
        m = DIRECTIVE.match(line)
        if not m: break
        words = m.group(1).replace(':', ': ').split()
        if words: res[words[0].rstrip(':').lower()] = [w.lower() for w in words[1:]]
    return res


def to_script(nb, flags):
    "The code cells of notebook `nb` that nbdev_test would run, in order, as one IPython script; and how many were left out."
    cells = [''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']
    keep = [s for s in cells if not (flags & directives(s).keys() or directives(s).get('eval', [''])[:1] == ['false']
                                     or 'nbdev_export(' in s)]
    return '\n\n'.join(keep) + '\n', len(cells) - len(keep)


def simulate(tmp):
    cfg = configparser.ConfigParser()
    cfg.read(ROOT/'settings.ini')
    flags = set(cfg['DEFAULT'].get('tst_flags', '').split())
    origin, venv, nbs, ipydir = tmp/'origin', tmp/'colab-venv', tmp/'notebooks', tmp/'ipython'

    check('git clone', *run('clone of the committed HEAD', ['git', 'clone', '-q', str(ROOT), str(origin)], tmp/'clone.log'))
    check('venv', *run('fresh venv', [sys.executable, '-m', 'venv', str(venv)], tmp/'venv.log'))
    check('pip install of the Colab packages', *run(f'pip install {" ".join(COLAB_PACKAGES)}',
          [str(venv/'bin'/'python'), '-m', 'pip', 'install', '-q', *COLAB_PACKAGES], tmp/'pip.log'))

    startup = ipydir/'profile_default'/'startup'
    startup.mkdir(parents=True)
    (startup/'00-colab.py').write_text(STARTUP)
    nbs.mkdir()
    env = dict(os.environ, SRGAN_NB_REPO=str(origin), SRGAN_NB_HOME=str(tmp/'content'/'srgan_nb'), IPYTHONDIR=str(ipydir),
               MPLBACKEND='Agg', IN_TEST='1', VIRTUAL_ENV=str(venv), PATH=f"{venv/'bin'}{os.pathsep}{os.environ['PATH']}")
    for k in ('PYTHONPATH', 'SRGAN_NB_FULL'): env.pop(k, None)
    ipython = [str(venv/'bin'/'ipython'), '--colors=nocolor']

    (nbs/'probe.ipy').write_text(PROBE)
    rc, out = run('IPython probe', [*ipython, 'probe.ipy'], tmp/'probe.log', cwd=nbs, env=env)
    if rc == 0 or 'after the error' in out or 'google.colab stub: True' not in out:
        raise Failed(f'the IPython probe did not behave as expected (exit code {rc}: want the stub, and a failure '
                     f'that stops the script with a non-zero exit code):\n{out}')

    for name in NOTEBOOKS:
        shutil.copy(origin/'nbs'/f'{name}.ipynb', nbs)
        script, skipped = to_script(nbs/f'{name}.ipynb', flags)
        (nbs/f'{name}.ipy').write_text(script)
        rc, out = run(f'{name} ({skipped} cells left out)', [*ipython, f'{name}.ipy'], tmp/f'{name}.log', cwd=nbs, env=env)
        check(f'notebook {name}', rc, out)


def main():
    t0, tmp = time.time(), Path(tempfile.mkdtemp(prefix='colab-sim-'))
    try: simulate(tmp)
    except Failed as e:
        print(f'colab simulation FAILED: {e}', flush=True)
        return 1
    finally:
        t = time.time()
        shutil.rmtree(tmp, ignore_errors=True)
        print(f'removed the work folder: {time.time() - t:.0f} s')
    print(f'colab simulation: {", ".join(NOTEBOOKS)} passed in {time.time() - t0:.0f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
