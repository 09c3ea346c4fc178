"""Prove the notebooks' ipywidgets in a real browser: JupyterLab + headless Chromium, driven by selenium.

    apt-get update && apt-get install -y chromium chromium-driver      # Debian's Chromium and its chromedriver
    pip install jupyterlab selenium                                     # ipywidgets comes with srgan_nb[dev]
    python .ci/browser_test.py --out DIR                                # from the repository root; CI runs it

Nothing here downloads a browser or a driver: it uses the `chromium` and `chromedriver` found on PATH (or
--chromium / --chromedriver), and tells selenium to stay offline.

Two widgets are checked; both only exist outside tests (their cells test `os.environ.get('IN_TEST')`):
  * nbs/03_vgg.ipynb: the VGG feature-map browser (`@widgets.interact` with a layer Dropdown and a channel
    IntSlider). The Dropdown is set to relu5_4 and the picture must be redrawn.
  * nbs/08_upscale.ipynb: the perception-distortion slider (`FloatSlider(description='alpha')` whose picture is
    redrawn in an `Output` widget). The handle is clicked and End pressed: the readout must show 1.00 and the
    picture must be redrawn.
Each notebook is reduced to a small notebook in a temporary folder (tmp/nbs/<name>.ipynb, with tmp/data_samples a
link to data_samples/, as the notebooks read ../data_samples): only the cells the widget needs, copied from the
real notebook by cell id (a cell whose id is gone is found by its content), so the test breaks when the widget
code or what it uses breaks. JupyterLab serves tmp/ with a kernel of this Python (this venv); the browser runs all
cells (the command behind Run > Run All Cells), waits for the widget and its picture, records the picture's `src`,
moves the widget and waits until the `src` changes. Screenshots before and after go to --out (the window, and the
widget's cell alone). Exit status 0: both checks passed; 1: a check failed or timed out (the message says which;
a screenshot `*_failure.png`, the browser's console and the JupyterLab log are saved in --out); 2: set-up problem.
"""
import argparse, fcntl, json, os, re, secrets, shutil, signal, socket, subprocess, sys, tempfile, time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT/'nbs'
KERNEL = 'srgan_nb_browser'

# (cell id, a regex its source must match): the cells each reduced notebook keeps, besides every `#| export` cell.
# They run in the notebook's own order; the last one is the widget cell.
CELLS = {
    '03_vgg': [
        ('df3e3023', r"google\.colab"),                       # the Colab set-up cell (does nothing here)
        ('a896fa17', r"from fastcore\.test import"),          # test_eq, ...
        ('b2e9bfcb', r"^device = "),
        ('504a2bd8', r"vgg_rand = load_vgg19\(None\)"),      # RANDOM VGG19 weights: offline
        ('83b3d486', r"def vgg_receptive_field"),           # numpy, matplotlib, PIL
        ('d14faf46', r"RELUS = "),                            # the image xt and the layer list
        ('25748a31', r"def vgg_maps"),                        # maps_rand
        ('058cb087', r"@widgets\.interact"),                  # the widget: show_channel, maps, the browser
    ],
    '08_upscale': [
        ('3fcf1270', r"google\.colab"),
        ('6b059906', r"from fastcore\.test import"),
        ('58d5768b', r"^samples = "),                         # imports, device, samples
        ('2cc3d42c', r"def train_tiny"),                      # psnr, g_pix (the stand-in when no weights ship)
        ('368976a7', r"g_sharp = train_tiny"),                # g_sharp (the other stand-in)
        ('f8818852', r"def slider_panels"),                   # face_lr, face_hr, pair, slider_panels
        ('06140aa0', r"description='alpha'"),                 # the widget
    ],
}

class Fail(Exception): "A check failed or timed out."

def log(*a): print(f'[{time.strftime("%H:%M:%S")}]', *a, flush=True)

# ------------------------------------------------------------------------------------------- reduced notebooks
def read_nb(p):
    "The notebook at `p`, read under its nbcell.py lock when there is one (notebooks may be edited concurrently)."
    lock = Path(str(p) + '.lock')
    for i in range(5):
        try:
            if lock.exists():
                with open(lock) as lk:
                    fcntl.flock(lk, fcntl.LOCK_SH)
                    return json.loads(p.read_text())
            return json.loads(p.read_text())
        except json.JSONDecodeError:
            if i == 4: raise
            time.sleep(1)

def src(c): return ''.join(c['source'])

def directives(c):
    res = set()
    for line in src(c).splitlines():
        s = line.strip()
        if not s.startswith('#|'): break
        res.update(s[2:].replace(':', ' ').split())
    return res

def reduce_nb(name):
    "A small notebook: the `#| export` cells and the cells of CELLS[name], outputs cleared, in the original order."
    p = NBS/f'{name}.ipynb'
    nb = read_nb(p)
    cells, keep = nb['cells'], set()
    for cid, pat in CELLS[name]:
        rx = re.compile(pat, re.M)
        hit = [i for i, c in enumerate(cells) if c.get('id') == cid and c['cell_type'] == 'code' and rx.search(src(c))]
        if not hit:     # the id changed: find the cell by what it holds
            hit = [i for i, c in enumerate(cells) if c['cell_type'] == 'code' and rx.search(src(c))]
            if len(hit) != 1:
                raise Fail(f"{p.relative_to(ROOT)}: no code cell with id {cid} matching /{pat}/, and {len(hit)} "
                           f"cells match /{pat}/ (need exactly one): update CELLS in {Path(__file__).name}")
            log(f"note: {name}: cell {cid} is gone; using cell {hit[0]} ({cells[hit[0]].get('id')}), which matches /{pat}/")
        keep.add(hit[0])
    widget = max(keep)
    wid_pat = CELLS[name][-1][1]
    if not re.search(wid_pat, src(cells[widget]), re.M):
        raise Fail(f"{p.relative_to(ROOT)}: the widget cell (/{wid_pat}/) must come after every cell it needs")
    keep |= {i for i, c in enumerate(cells[:widget]) if c['cell_type'] == 'code' and directives(c) & {'export', 'exports'}}
    out = []
    for i in sorted(keep):
        c = dict(cells[i]); c.update(outputs=[], execution_count=None, metadata={})
        out.append(c)
    small = dict(nbformat=4, nbformat_minor=max(nb.get('nbformat_minor', 5), 5), cells=out,
                 metadata=dict(kernelspec=dict(name=KERNEL, display_name='srgan_nb (browser test)', language='python'),
                               language_info=dict(name='python')))
    return small, [c.get('id') for c in out]

# ------------------------------------------------------------------------------------------- jupyter server
def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def api(base, token, path, method='GET'):
    req = urllib.request.Request(f'{base}{path}', method=method, headers={'Authorization': f'token {token}'})
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
    return json.loads(body) if body else None

def setup_tree(tmp):
    "tmp/nbs (the reduced notebooks), tmp/data_samples, and a private Jupyter config/data/runtime under tmp/jupyter."
    (tmp/'nbs').mkdir()
    os.symlink(ROOT/'data_samples', tmp/'data_samples')
    j = tmp/'jupyter'
    ks = j/'data'/'kernels'/KERNEL; ks.mkdir(parents=True)
    (ks/'kernel.json').write_text(json.dumps(dict(
        argv=[sys.executable, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
        display_name='srgan_nb (browser test)', language='python')))
    us = j/'config'/'lab'/'user-settings'/'@jupyterlab'
    for ext, plugin, settings in (('notebook-extension', 'tracker', {'windowingMode': 'none'}),      # all cells in the DOM
                                  ('apputils-extension', 'notification', {'fetchNews': 'false', 'checkForUpdates': False})):
        (us/ext).mkdir(parents=True, exist_ok=True)
        (us/ext/f'{plugin}.jupyterlab-settings').write_text(json.dumps(settings))
    env = dict(os.environ)
    for k in ('IN_TEST', 'MPLBACKEND', 'JUPYTER_PATH', 'JUPYTERLAB_DIR'): env.pop(k, None)  # widgets, inline figures
    env.update(JUPYTER_CONFIG_DIR=str(j/'config'), JUPYTER_DATA_DIR=str(j/'data'), JUPYTER_RUNTIME_DIR=str(j/'runtime'),
               JUPYTERLAB_SETTINGS_DIR=str(j/'config'/'lab'/'user-settings'),
               JUPYTERLAB_WORKSPACES_DIR=str(j/'config'/'lab'/'workspaces'), IPYTHONDIR=str(j/'ipython'),
               PYTHONUNBUFFERED='1')
    return env

def start_jupyter(tmp, env, logf, timeout):
    port, token = free_port(), secrets.token_hex(16)
    cmd = [sys.executable, '-m', 'jupyterlab', '--no-browser', '--ip=127.0.0.1', f'--port={port}', '--allow-root',
           f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={tmp}', '--ServerApp.port_retries=0',
           '--LabApp.expose_app_in_browser=True']
    proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    base, t0 = f'http://127.0.0.1:{port}', time.time()
    while True:
        if proc.poll() is not None: raise Fail(f'jupyter lab exited with status {proc.returncode} (see the log)')
        try:
            api(base, token, '/api/status'); break
        except Exception:
            if time.time() - t0 > timeout: raise Fail(f'jupyter lab did not answer on {base} within {timeout} s')
            time.sleep(1)
    log(f'jupyter lab serves {tmp} on {base} ({time.time() - t0:.0f} s)')
    return proc, base, token

def shutdown_kernels(base, token):
    try:
        for k in api(base, token, '/api/kernels') or []: api(base, token, f"/api/kernels/{k['id']}", 'DELETE')
    except Exception as e: log(f'note: could not shut the kernels down through the API: {e}')

def stop_jupyter(proc, base, token, tmp):
    if base: shutdown_kernels(base, token)
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)   # jupyter server shuts its kernels down on SIGTERM
        try: proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL); proc.wait(10)
    # kernels run in sessions of their own: kill any left (their command line names our private runtime folder)
    mark = str(tmp/'jupyter')
    for d in Path('/proc').iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid(): continue
        try: cl = (d/'cmdline').read_bytes().decode(errors='replace')
        except OSError: continue
        if mark in cl:
            try: os.kill(int(d.name), signal.SIGKILL); log(f'killed a leftover process {d.name}')
            except OSError: pass

# ------------------------------------------------------------------------------------------- browser
STATUS_JS = r"""
const path = arguments[0], app = window.jupyterapp;
if (!app) return {state: 'loading'};
let panel = null;
for (const w of app.shell.widgets('main')) if (w.context && w.context.path === path) panel = w;
if (!panel || !panel.content) return {state: 'no panel'};
const sc = panel.sessionContext, k = sc.session && sc.session.kernel;
const r = {state: 'ok', ready: !!(panel.context.isReady && sc.isReady), kernel: k ? k.status : null,
           kernelName: k ? k.name : null, code: 0, done: 0, running: 0, errors: [], ncells: panel.content.widgets.length};
panel.content.widgets.forEach((cell, i) => {
  const m = cell.model;
  if (m.type !== 'code') return;
  r.code++;
  if (m.executionCount !== null && m.executionCount !== undefined) r.done++;
  if (m.executionState === 'running') r.running++;
  for (const o of m.outputs.toJSON())
    if (o.output_type === 'error') r.errors.push({cell: i, ename: o.ename, evalue: o.evalue, tb: (o.traceback || []).join('\n')});
});
return r;
"""
RUN_ALL_JS = r"""
const path = arguments[0], app = window.jupyterapp;
for (const w of app.shell.widgets('main')) if (w.context && w.context.path === path) app.shell.activateById(w.id);
app.commands.execute('notebook:run-all-cells');
return true;
"""
CELL_JS = r"""
const path = arguments[0], i = arguments[1], app = window.jupyterapp;
for (const w of app.shell.widgets('main')) if (w.context && w.context.path === path) return w.content.widgets[i].node;
return null;
"""
ANSI = re.compile(r'\x1b\[[0-9;]*[A-Za-z]')

def make_driver(args):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    o = Options()
    o.binary_location = args.chromium
    for a in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--window-size=1400,1000',
              '--no-first-run', '--no-default-browser-check', '--disable-extensions'):
        o.add_argument(a)
    o.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    d = webdriver.Chrome(service=Service(args.chromedriver), options=o)
    d.set_page_load_timeout(args.timeout); d.set_script_timeout(60)
    return d

def wait_for(what, fn, timeout, every=1.0):
    "Poll fn() until it returns something truthy; Fail after `timeout` seconds (the last exception is reported)."
    from selenium.common.exceptions import WebDriverException
    t0, last = time.time(), None
    while True:
        try:
            v = fn()
            if v: return v
        except (WebDriverException, KeyError, IndexError, TypeError) as e: last = e
        if time.time() - t0 > timeout:
            raise Fail(f'timed out after {timeout} s waiting for {what}' + (f' (last error: {str(last).splitlines()[0]})' if last else ''))
        time.sleep(every)

def img_src(cell):
    "The `src` of the (last) picture in the cell's outputs, or None."
    imgs = cell.find_elements('css selector', '.jp-OutputArea-output img')
    return imgs[-1].get_attribute('src') if imgs else None

def shot(d, cell, out, stem):
    d.execute_script("arguments[0].scrollIntoView({block: 'start'});", cell); time.sleep(0.5)
    full, crop = out/f'{stem}.png', out/f'{stem}_widget.png'
    d.save_screenshot(str(full)); cell.screenshot(str(crop))
    log(f'screenshot {full}'); log(f'screenshot {crop}')
    return [full, crop]

def run_notebook(d, args, base, token, name, n_widget, wait_run):
    "Open tmp/nbs/<name>.ipynb, run all, wait for cell `n_widget`'s widget: returns (path, widget cell element)."
    path = f'nbs/{name}.ipynb'
    d.get(f'{base}/lab/workspaces/bt{name[:2]}/tree/{path}?reset&token={token}')
    t0 = time.time()
    st = wait_for(f'JupyterLab to open {path} and start its kernel',
                  lambda: (lambda r: r if r.get('state') == 'ok' and r['ready'] and r['kernel'] == 'idle' else None)(
                      d.execute_script(STATUS_JS, path)), args.timeout)
    if st['kernelName'] != KERNEL: raise Fail(f"{path}: the kernel is {st['kernelName']!r}, not {KERNEL!r}")
    log(f'{name}: page and kernel ready ({time.time() - t0:.0f} s); running all {st["code"]} cells')
    d.execute_script(RUN_ALL_JS, path)
    t0 = time.time()
    def finished():
        r = d.execute_script(STATUS_JS, path)
        if r['errors']:
            e = r['errors'][0]
            raise Fail(f"{path}: cell {e['cell']} raised {e['ename']}: {e['evalue']}\n" + ANSI.sub('', e['tb'])[-3000:])
        return r if r['done'] == r['code'] and r['running'] == 0 and r['kernel'] == 'idle' else None
    wait_for(f'all cells of {path} to run', finished, wait_run, every=2)
    log(f'{name}: all cells ran ({time.time() - t0:.0f} s)')
    cell = d.execute_script(CELL_JS, path, n_widget)
    return path, cell

def check_vgg(d, args, base, token, out, n_widget):
    from selenium.webdriver.support.ui import Select
    name = '03_vgg'
    path, _ = run_notebook(d, args, base, token, name, n_widget, args.run_timeout)
    cell = lambda: d.execute_script(CELL_JS, path, n_widget)
    wait_for(f'{name}: the layer Dropdown and the channel slider', lambda: cell().find_elements('css selector', '.widget-dropdown select')
             and cell().find_elements('css selector', '.widget-slider .noUi-handle'), args.timeout)
    before = wait_for(f'{name}: the feature map picture', lambda: img_src(cell()), args.timeout)
    sel = Select(cell().find_element('css selector', '.widget-dropdown select'))
    if sel.first_selected_option.text.strip() != 'relu2_2':
        raise Fail(f'{name}: the Dropdown starts at {sel.first_selected_option.text!r}, not relu2_2')
    shots = shot(d, cell(), out, f'{name}_before')
    log(f'{name}: picture src {before[:40]}... ({len(before)} chars); choosing relu5_4')
    sel.select_by_visible_text('relu5_4')
    after = wait_for(f'{name}: the picture to be redrawn after choosing relu5_4',
                     lambda: (lambda s: s if s and s != before else None)(img_src(cell())), args.timeout)
    v = Select(cell().find_element('css selector', '.widget-dropdown select')).first_selected_option.text.strip()
    if v != 'relu5_4': raise Fail(f'{name}: the Dropdown shows {v!r} after choosing relu5_4')
    time.sleep(1)
    shots += shot(d, cell(), out, f'{name}_after')
    log(f'{name}: OK: the Dropdown shows relu5_4 and the picture changed ({len(after)} chars)')
    return shots

def check_upscale(d, args, base, token, out, n_widget):
    from selenium.webdriver.common.keys import Keys
    name = '08_upscale'
    path, _ = run_notebook(d, args, base, token, name, n_widget, args.run_timeout)
    cell = lambda: d.execute_script(CELL_JS, path, n_widget)
    readout = lambda: cell().find_element('css selector', '.widget-slider .widget-readout').text.strip()
    wait_for(f'{name}: the alpha slider', lambda: cell().find_elements('css selector', '.widget-slider .noUi-handle'), args.timeout)
    before = wait_for(f'{name}: the picture under the slider', lambda: img_src(cell()), args.timeout)
    label = cell().find_element('css selector', '.widget-slider .widget-label').text.strip()
    if label != 'alpha': raise Fail(f"{name}: the slider's label is {label!r}, not 'alpha'")
    if readout() != '0.50': raise Fail(f'{name}: the slider starts at {readout()!r}, not 0.50')
    shots = shot(d, cell(), out, f'{name}_before')
    log(f'{name}: alpha {readout()}, picture src {before[:40]}... ({len(before)} chars); moving the handle to the end')
    h = cell().find_element('css selector', '.widget-slider .noUi-handle')
    h.click(); h.send_keys(Keys.END)
    wait_for(f'{name}: the readout to show 1.00 after End', lambda: readout() == '1.00', args.timeout)
    after = wait_for(f'{name}: the picture to be redrawn for alpha = 1',
                     lambda: (lambda s: s if s and s != before else None)(img_src(cell())), args.timeout)
    wait_for(f'{name}: the kernel to finish the redraw', lambda: d.execute_script(STATUS_JS, path)['kernel'] == 'idle', args.timeout)
    after = img_src(cell())
    if after == before: raise Fail(f'{name}: the picture is the one of alpha = 0.5 again')
    time.sleep(1)
    shots += shot(d, cell(), out, f'{name}_after')
    log(f'{name}: OK: the readout shows {readout()} and the picture changed ({len(after)} chars)')
    return shots

CHECKS = {'03_vgg': check_vgg, '08_upscale': check_upscale}

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', help='folder for the screenshots and logs (default: a new temporary folder)')
    p.add_argument('--only', nargs='*', choices=list(CHECKS), help='check only these notebooks')
    p.add_argument('--timeout', type=float, default=180, help='seconds for each wait (default 180)')
    p.add_argument('--run-timeout', type=float, default=600, help='seconds for running all cells of one notebook (default 600)')
    p.add_argument('--chromium', default=shutil.which('chromium') or shutil.which('chromium-browser'))
    p.add_argument('--chromedriver', default=shutil.which('chromedriver'))
    p.add_argument('--keep', action='store_true', help='keep the temporary notebook folder')
    args = p.parse_args()
    t_start = time.time()
    out = Path(args.out or tempfile.mkdtemp(prefix='srgan_nb_browser_')).resolve(); out.mkdir(parents=True, exist_ok=True)
    missing = [n for n, v in (('chromium', args.chromium), ('chromedriver', args.chromedriver)) if not v]
    if missing: print(f'browser_test: {" and ".join(missing)} not found: apt-get install -y chromium chromium-driver', file=sys.stderr); return 2
    try: import selenium, jupyterlab, ipywidgets  # noqa: F401
    except ImportError as e: print(f'browser_test: {e}: pip install jupyterlab selenium (ipywidgets: srgan_nb[dev])', file=sys.stderr); return 2
    os.environ['SE_OFFLINE'] = 'true'          # selenium manager: never download a browser or a driver
    names = args.only or list(CHECKS)
    tmp = Path(tempfile.mkdtemp(prefix='srgan_nb_bt_')).resolve()
    proc = base = token = d = None
    shots, rc = [], 1
    logf = open(out/'jupyter.log', 'w')
    try:
        env = setup_tree(tmp)
        widget_cell = {}
        for n in names:
            nb, ids = reduce_nb(n)
            (tmp/'nbs'/f'{n}.ipynb').write_text(json.dumps(nb, indent=1))
            widget_cell[n] = len(nb['cells']) - 1
            log(f'{n}: a notebook of {len(ids)} cells copied from nbs/{n}.ipynb (ids {" ".join(ids)})')
        proc, base, token = start_jupyter(tmp, env, logf, args.timeout)
        for n in names:
            t0 = time.time()
            d = make_driver(args)
            try: shots += CHECKS[n](d, args, base, token, out, widget_cell[n])
            except Exception:
                try: d.save_screenshot(str(out/f'{n}_failure.png')); log(f'screenshot {out/f"{n}_failure.png"}')
                except Exception: pass
                try: (out/f'{n}_console.log').write_text('\n'.join(f"{e['level']} {e['message']}" for e in d.get_log('browser')))
                except Exception: pass
                raise
            finally:
                d.quit(); d = None
                shutdown_kernels(base, token)
            log(f'{n}: passed in {time.time() - t0:.0f} s')
        rc = 0
    except Fail as e:
        print(f'\nbrowser_test FAILED: {e}', file=sys.stderr)
    except Exception as e:
        print(f'\nbrowser_test FAILED: {type(e).__name__}: {e}', file=sys.stderr)
    finally:
        if d is not None:
            try: d.quit()
            except Exception: pass
        stop_jupyter(proc, base, token, tmp)
        logf.close()
        if rc: print(f'the JupyterLab log: {out/"jupyter.log"}', file=sys.stderr)
        if args.keep: log(f'kept {tmp}')
        else: shutil.rmtree(tmp, ignore_errors=True)
    print('\nscreenshots:' if shots else '\nno screenshots', *shots, sep='\n  ')
    print(f'browser_test: {"passed" if rc == 0 else "FAILED"} ({", ".join(names)}) in {time.time() - t_start:.0f} s')
    return rc

if __name__ == '__main__': sys.exit(main())
