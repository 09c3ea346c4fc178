"""The GPU check: what only a GPU can show, in one run of under 8 minutes, printed as one table.

    python .ci/gpu.py                 # on a machine with CUDA (the device tool's GPU, Colab)
    python .ci/gpu.py --dry-run       # the same checks, tiny, on the CPU: tests the script itself (CI runs this)

Rows: upscale() in fp16 and bf16 against fp32 (PSNR between the outputs, tiled against untiled); a few hundred steps
of both training stages in fp16 with loss scaling (finite, and how many steps the scaler skipped); the quick settings
of notebooks 06b and 07 (their cells run through nbdev's test runner); a 2-process torchrun on one device; and
bench-upscale rows. Each check has a time budget and reports its own failure without stopping the others.
Exit code: 0 when every check passed, 1 otherwise.
"""
import argparse, math, os, subprocess, sys, tempfile, time, traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='srgan_nb GPU check: one table of what only a GPU can show')
    p.add_argument('--dry-run', action='store_true', help='run every check tiny on the CPU (tests this script)')
    p.add_argument('--device', default=None, help='device to check (default: cuda, or cpu with --dry-run)')
    p.add_argument('--steps', type=int, default=None, help='training steps per stage (default 300; dry run 3)')
    p.add_argument('--size', type=int, default=None, help='upscale input side in pixels (default 512; dry run 32)')
    p.add_argument('--only', nargs='+', default=None, choices=CHECKS, help='run only these checks')
    p.add_argument('--budget', type=float, default=None, help='seconds for the whole run (default 450; dry run 240)')
    a = p.parse_args(argv)
    a.device = a.device or ('cpu' if a.dry_run else 'cuda')
    a.steps = a.steps or (3 if a.dry_run else 300)
    a.size = a.size or (32 if a.dry_run else 512)
    a.budget = a.budget or (240. if a.dry_run else 450.)
    return a


def _psnr(a, b):
    import numpy as np
    d = (np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2
    return float('inf') if d.mean() == 0 else 10 * math.log10(255 ** 2 / d.mean())


def check_upscale(a):
    "upscale() in fp16 and bf16 against fp32 on one photo: dB between outputs, tiled against untiled."
    import numpy as np, torch
    from PIL import Image
    from srgan_nb.inference import upscale, get_model
    from srgan_nb.models import SRResNet
    try: net = get_model('srgan', a.device)
    except FileNotFoundError:
        torch.manual_seed(0); net = SRResNet(n_blocks=2, n_feats=16, bn=False, global_skip=True).to(a.device).eval()
    img = Image.open(ROOT/'data_samples'/'astronaut.png').convert('RGB').resize((a.size, a.size), Image.BICUBIC)
    ref = upscale(img, net, device=a.device, precision='fp32', tile=0)
    rows = []
    for p in ('fp16', 'bf16'):
        if a.device.startswith('cuda') and p == 'bf16' and not torch.cuda.is_bf16_supported():
            rows.append((f'upscale {p}', 'skipped', 'no bf16 on this GPU')); continue
        whole = upscale(img, net, device=a.device, precision=p, tile=0)
        tiled = upscale(img, net, device=a.device, precision=p, tile=max(16, a.size // 3))
        ok = _psnr(whole, ref) > 35 and _psnr(tiled, whole) > 35
        rows.append((f'upscale {p}', 'ok' if ok else 'FAIL',
                     f'{_psnr(whole, ref):.1f} dB from fp32; tiled vs untiled {_psnr(tiled, whole):.1f} dB'))
    return rows


def _train(a, out, precision):
    from srgan_nb.train import train
    from srgan_nb.data import find_dataset
    from fastai.callback.progress import ProgressCallback
    from fastcore.basics import defaults
    defaults.callbacks = [c for c in defaults.callbacks if c is not ProgressCallback]   # one table, no progress bars
    data = [d for d in (find_dataset('T91'), find_dataset('BSD200')) if d] or [ROOT/'data_samples']
    tiny = a.dry_run
    return train(data=data if len(data) > 1 else data[0], out=out, pregen_steps=a.steps, steps=max(1, a.steps // 3),
                 batch_size=2 if tiny else 16, patch_size=32 if tiny else 96, n_blocks=1 if tiny else 16,
                 n_feats=8 if tiny else 64, critic_feats=8 if tiny else 64, critic_dense=16 if tiny else 1024,
                 valid_every=max(1, a.steps // 2), ckpt_every=a.steps, valid_pct=0.3 if tiny else 0.05,
                 device=a.device, precision=precision, bn=False, global_skip=True, pixel_loss='l1')


def check_train(a):
    "Both stages in fp16 with loss scaling: finite, final validation PSNR, seconds."
    import torch
    from srgan_nb.resume import read_log, load_checkpoint
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        res = _train(a, Path(d)/'run', 'fp16')
        dt = time.perf_counter() - t0
        rows = read_log(res['log'])
        ck = load_checkpoint(Path(d)/'run'/'gan.ckpt')
        finite = all(torch.isfinite(v).all() for v in ck['model'].values() if v.is_floating_point())
        scale = (ck.get('scaler') or {}).get('scale')
        last = {ph: next((r for r in reversed(rows) if r['phase'] == ph), None) for ph in ('pretrain', 'gan')}
        detail = ', '.join(f"{ph} {r['step']} steps, valid {r['valid_psnr']:.2f} dB" for ph, r in last.items() if r)
        return [('train fp16 (both stages)', 'ok' if finite else 'FAIL', f'{detail}; loss scale at the end {scale}; {dt:.0f} s')]


def check_notebooks(a):
    "The quick settings of 06b and 07, run as nbdev's tests run them (on the GPU when there is one)."
    rows = []
    for nb in ('06b_pretrain', '07_gan'):
        t0 = time.perf_counter()
        if a.dry_run: rows.append((f'notebook {nb}', 'dry run', 'not executed in a dry run')); continue
        r = subprocess.run(['nbdev_test', '--path', str(ROOT/'nbs'/f'{nb}.ipynb')], capture_output=True, text=True,
                           cwd=ROOT, timeout=max(60, a.budget / 3))
        rows.append((f'notebook {nb}', 'ok' if r.returncode == 0 else 'FAIL',
                     f'{time.perf_counter() - t0:.0f} s' + ('' if r.returncode == 0 else f': {r.stderr.strip()[-300:]}')))
    return rows


def check_torchrun(a):
    "Two processes of `srgan_nb train` on one device under torchrun."
    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', '-m', 'srgan_nb.cli',
               'train', '--data', str(ROOT/'data_samples'), '--out', f'{d}/run', '--pregen-steps', '2', '--steps', '2',
               '--valid-every', '2', '--valid-pct', '0.3', '--n-blocks', '1', '--n-feats', '8', '--patch-size', '32',
               '--batch-size', '2', '--no-bn', '--critic-feats', '8', '--critic-dense', '16', '--device', a.device]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, 'OMP_NUM_THREADS': '1'}, timeout=300)
        why = r.stderr.strip().splitlines()[-1][:200] if r.returncode and r.stderr.strip() else ''
        # NCCL refuses two processes on one GPU; that is a fact about the backend, reported as such
        status = 'ok' if r.returncode == 0 else ('not possible' if 'Duplicate GPU' in r.stderr else 'FAIL')
        return [('torchrun, 2 processes', status, f'{time.perf_counter() - t0:.0f} s' + (f': {why}' if why else ''))]


def check_bench(a):
    "bench-upscale rows on the device."
    from srgan_nb.speed import bench_upscale
    from srgan_nb.models import SRResNet
    import torch
    model = None
    if a.dry_run: torch.manual_seed(0); model = SRResNet(n_blocks=1, n_feats=8, bn=False, global_skip=True).eval()
    b = bench_upscale(a.size, model=model, device=a.device, n=2, onnx=False)
    return [(f"bench {r['path']}", 'ok', f"{r['mps']:.2f} MP/s, {r['ratio']:.2f}x the best bare forward") for r in b['rows']]


CHECKS = {'upscale': check_upscale, 'train': check_train, 'notebooks': check_notebooks, 'torchrun': check_torchrun,
          'bench': check_bench}


def run(a):
    "Run the chosen checks in order within the budget; returns the table's rows (check, status, detail)."
    import torch
    if a.device.startswith('cuda') and not torch.cuda.is_available():
        return [('device', 'FAIL', 'CUDA is not available here: run with --dry-run on a CPU')]
    t_end, rows = time.perf_counter() + a.budget, []
    name = torch.cuda.get_device_name(0) if a.device.startswith('cuda') else 'CPU (dry run)'
    rows.append(('device', 'ok', f'{name}; torch {torch.__version__}'))
    for k in a.only or CHECKS:
        if time.perf_counter() > t_end: rows.append((k, 'FAIL', 'out of time: not run')); continue
        t0 = time.perf_counter()
        try: rows += CHECKS[k](a)
        except Exception as e:
            rows.append((k, 'FAIL', f'{type(e).__name__}: {str(e)[:200]}'))
            traceback.print_exc(file=sys.stderr)
        print(f'[{k}] {time.perf_counter() - t0:.0f} s', file=sys.stderr, flush=True)
    return rows


def table(rows):
    "The rows as a markdown table."
    lines = ['| check | status | detail |', '|---|---|---|']
    return '\n'.join(lines + [f'| {c} | {s} | {d} |' for c, s, d in rows])


def main(argv=None):
    a = parse_args(argv)
    rows = run(a)
    print(table(rows))
    return 0 if all(s in ('ok', 'dry run', 'not possible', 'skipped') for _, s, _ in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
