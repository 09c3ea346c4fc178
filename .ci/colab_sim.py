"""Run notebooks the way a Colab learner meets them: only the visible set-up cell installs srgan_nb.

    python .ci/colab_sim.py             # from the repository root; CI runs it (.ci/run)
    python .ci/colab_sim.py --static    # only step 0, the quick Colab check (seconds: it reads the notebooks' JSON)

0. First, a static check of EVERY notebook under nbs/ (no fresh venv, no network: it reads the notebooks' JSON and
   imports the rule from this checkout's srgan_nb.download). The code cells that Colab's quick setting runs (all but
   the `slow` ones, which quick_skip skips) must make none of the heavy calls of `heavy_call`: DIV2K's training photos,
   STL10, a data set over QUICK_MAX_MB, VGG19's ImageNet weights outside 03_vgg, CPU benchmarks at full size. Code
   that a quick run does not run is not checked: function bodies, `if FULL:` branches, `b` in `a if FULL else b`,
   and calls that a test expects to fail (`test_fail(lambda: ...)`); nor are arguments that are not literals. It
   prints one line per notebook and fails naming the notebook, the cell id and the call.

Every notebook starts with the set-up cell of .ci/colab.py. In Colab it clones the repository, installs it with its
[dev] extras (nbdev for show_doc, ...) and works in its nbs/ folder; nowhere else does it do anything, so the ordinary
CI run never executes it. This script executes it, in a temporary folder that is removed at the end:
  1. a local clone of the committed HEAD plays the GitHub repository (SRGAN_NB_REPO points at it);
  2. a fresh venv holds only what Colab preinstalls (torch, torchvision, fastai, matplotlib, pandas, pillow, IPython);
  3. an IPython startup file puts a stub `google.colab` module in sys.modules, as Colab's kernel has one;
  4. the notebooks, copied into an empty folder outside any clone, run top to bottom in that venv's IPython
     (code cells in order as one .ipy script; cells flagged with settings.ini's tst_flags or `#| eval: false` are
     left out and IN_TEST=1 is set, as nbdev_test does). That matches Colab's quick setting for `slow` cells (the
     set-up cell makes Colab skip them too); `online` cells, which Colab does run, are left out as well, since CI
     has no network. IPython stops at the first exception with exit code 1.
It exits non-zero naming the step or notebook that failed and showing the tail of its output.
"""
import ast, configparser, functools, json, os, re, shutil, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ['00_data', '08_upscale']
COLAB_PACKAGES = 'torch torchvision fastai matplotlib pandas pillow ipython ipykernel'.split()

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
    "nbdev directives in the leading comment lines of a cell: {'slow': [], 'eval': ['false'], ...} (srgan_nb.download's parser)."
    if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))
    from srgan_nb.download import _directives
    return _directives(src)


def to_script(nb, flags):
    "The code cells of notebook `nb` that nbdev_test would run (no `slow`, no `online`), in order, as one IPython script; and how many were left out."
    cells = [''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']
    keep = [s for s in cells if not (flags & directives(s).keys() or directives(s).get('eval', [''])[:1] == ['false']
                                     or 'nbdev_export(' in s)]
    return '\n\n'.join(keep) + '\n', len(cells) - len(keep)


# --- step 0: the quick Colab check -------------------------------------------------------------------------------
VGG_NOTEBOOK = '03_vgg'   # the notebook about VGG19: the only one whose quick run may download its ImageNet weights
UNKNOWN = object()        # an argument that is not a literal: the check cannot tell, and lets it pass


@functools.cache
def quick_rule():
    "(quick_skip, DATASETS, QUICK_MAX_MB) of the repository's srgan_nb.download: the rule the Colab set-up cell turns on."
    if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))
    from srgan_nb.download import quick_skip, DATASETS, QUICK_MAX_MB
    return quick_skip, DATASETS, QUICK_MAX_MB


def _full_side(test):
    "'full' for an `if` test that holds only in the full setting (`FULL`, `x and FULL`), 'quick' for `not FULL`, else None."
    is_full = lambda t: isinstance(t, ast.Name) and t.id == 'FULL'
    if is_full(test) or (isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) and any(map(is_full, test.values))): return 'full'
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) and is_full(test.operand): return 'quick'
    return None


def quick_calls(tree):
    "The calls in `tree` that a quick run makes: all but those in function bodies, in branches taken only when FULL, and in `test_fail(lambda: ...)`."
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):     # defining runs the decorators and defaults only
            todo += node.decorator_list + node.args.defaults + [d for d in node.args.kw_defaults if d]
            continue
        if isinstance(node, (ast.If, ast.IfExp)):
            side, listed = _full_side(node.test), lambda b: b if isinstance(b, list) else [b]
            todo += [node.test] + (listed(node.body) if side != 'full' else []) + (listed(node.orelse) if side != 'quick' else [])
            continue
        if isinstance(node, ast.Call):
            yield node
            if getattr(node.func, 'id', None) == 'test_fail' and node.args and isinstance(node.args[0], ast.Lambda):
                todo += node.args[1:] + [k.value for k in node.keywords]   # a call the test expects to fail: a refusal, not a run
                continue
        todo += ast.iter_child_nodes(node)


def _arg(call, pos, name):
    "The node of the argument at position `pos` or keyword `name` of `call`; None when it is not given."
    for k in call.keywords:
        if k.arg == name: return k.value
    return call.args[pos] if len(call.args) > pos and not any(isinstance(a, ast.Starred) for a in call.args[:pos + 1]) else None


def _value(node, default=None):
    "The literal value of `node` (of `b` in `a if FULL else b`), `default` when absent, UNKNOWN when not a literal."
    if node is None: return default
    if isinstance(node, ast.IfExp) and _full_side(node.test): return _value(node.orelse if _full_side(node.test) == 'full' else node.body)
    try: return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError): return UNKNOWN


def heavy_call(call, nb, datasets, max_mb):
    "Why `call` in notebook `nb` is too heavy for a quick Colab run; None when it is not."
    f = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, 'id', None)
    val = lambda pos, name, default=None: _value(_arg(call, pos, name), default)
    at_least = lambda x, lim: isinstance(x, (int, float)) and not isinstance(x, bool) and x >= lim
    if f == 'download_div2k':
        splits = val(1, 'splits', ('train', 'valid'))
        if _arg(call, 2, 'base_url') is None and (splits is UNKNOWN or 'train' in splits): return "downloads DIV2K's 3.5 GB of training photos"
    if f == 'stl10_folder' and _arg(call, 4, 'dataset') is None and val(3, 'download', True) is not False:
        return 'downloads STL10 (2.6 GB)'
    if f in ('get_dataset', 'download_dataset'):
        name = val(0, 'name')
        size = datasets.get(name, {}).get('size') if isinstance(name, str) else None
        if size and size > max_mb * 1e6 and (f == 'download_dataset' or val(2, 'download', True) is not False):
            return f'downloads {name}, {size / 1e6:,.0f} MB (over {max_mb} MB)'
    if not nb.startswith(VGG_NOTEBOOK):
        vgg = f == 'load_vgg19' and val(0, 'weights', 'imagenet') == 'imagenet'
        if vgg or any(k.arg and k.arg.endswith('weights') and _value(k.value) == 'imagenet' for k in call.keywords):
            return f"downloads VGG19's ImageNet weights (548 MB), which only {VGG_NOTEBOOK} does in the quick setting"
    if f == 'bench_upscale' and at_least(val(0, 'size', 512), 128): return 'a CPU benchmark at 128 px or more (size defaults to 512)'
    if f == 'peak_rss' and at_least(val(0, 'size', 2048), 256): return 'a memory benchmark at 256 px or more (size defaults to 2048)'
    if f == 'window_curve' and _arg(call, 0, 'sizes') is None and _arg(call, 1, 'model') is None:
        return 'the whole window curve of the default SRResNet'
    if f == 'bench_train' and _arg(call, 0, 'n_blocks') is None: return 'a training benchmark of the 16-block SRResNet'
    return None


# Where a cell cannot be parsed (a cell magic of another language ...): the calls that are heavy whatever their arguments.
HEAVY_TEXT = re.compile(r"download_div2k\(|get_dataset\(\s*'DIV2K_train_HR'|load_vgg19\(\s*'imagenet'|weights\s*=\s*'imagenet'")


def quick_offences(nb, cells):
    "(number of code cells a quick Colab run makes, number it skips, [(cell id, call, why)]) for notebook `nb`'s `cells`."
    quick_skip, datasets, max_mb = quick_rule()
    run = skipped = 0
    bad = []
    for c in cells:
        if c['cell_type'] != 'code': continue
        src = ''.join(c['source'])
        if quick_skip(src): skipped += 1; continue
        run += 1
        # `%time code` and `%%time` keep their code; other `%magic` and `!shell` lines become `pass` (same lines, indentation)
        py = '\n'.join(re.sub(r'^(\s*)[%!].*', r'\1pass', re.sub(r'^(\s*)%%?time(\s|$)', r'\1', l)) for l in src.splitlines())
        try: tree = ast.parse(py)
        except SyntaxError:
            bad += [(c.get('id'), m.group(0), 'a heavy call in a cell that is not Python') for m in HEAVY_TEXT.finditer(src)
                    if not (nb.startswith(VGG_NOTEBOOK) and 'imagenet' in m.group(0))]
            continue
        for call in sorted(quick_calls(tree), key=lambda n: (n.lineno, n.col_offset)):
            why = heavy_call(call, nb, datasets, max_mb)
            if why:
                text = ' '.join((ast.get_source_segment(py, call) or ast.unparse(call)).split())
                bad.append((c.get('id'), text if len(text) <= 100 else text[:97] + '...', why))
    return run, skipped, bad


def quick_colab_check(root=ROOT):
    "Step 0: fail unless no notebook under nbs/ makes a heavy call in a cell that Colab's quick setting runs."
    bad = []
    for p in sorted((root/'nbs').glob('*.ipynb')):
        run, skipped, offences = quick_offences(p.stem, json.loads(p.read_text())['cells'])
        print(f'quick Colab check: {p.stem}: {run} code cells checked, {skipped} skipped (slow), {len(offences)} heavy calls', flush=True)
        bad += [f'nbs/{p.name}, cell {cid}: {call}: {why}' for cid, call, why in offences]
    if bad:
        raise Failed('in the quick setting Colab would run these heavy calls; flag their cells `slow`, or put them under '
                     '`if FULL:`:\n  ' + '\n  '.join(bad))


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


def main(argv=()):
    try: quick_colab_check()
    except Failed as e:
        print(f'quick Colab check FAILED: {e}', flush=True)
        return 1
    if '--static' in argv: return 0
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
    sys.exit(main(sys.argv[1:]))
