"""Fail when a saved output shows this machine's paths or internal run names, or a progress bar's text, when a notebook that draws a figure carries no saved picture (a reader on GitHub would see none), or when
nbs/ grows over 15 MB. Refresh the outputs with `python .ci/execute.py` and commit."""
import json, re, sys
from pathlib import Path
nbs = Path(__file__).resolve().parent.parent/'nbs'
draws_re = re.compile(r'plt\.|imshow|subplots|show_batch|show_images|compare_figure|plot_log|\.show\(')
bad, leaks, bars = [], [], []
bar = re.compile(r'█|\d+\.\d+% \[\d+/\d+ \d\d:\d\d<')   # fastprogress's text bar: one line per stage is enough
leak = re.compile(r'(?<![\w.:/~])/(?:[\w.-]+/){2,}|shared/data|\.venv|site-packages'
                  r'|\.cache/torch/|runs/release|srresnet_v1|\bgit [0-9a-f]{7,40}\b|first release|previous release')   # and internal run names
for f in sorted(nbs.glob('*.ipynb')):
    code = [c for c in json.loads(f.read_text())['cells'] if c['cell_type'] == 'code']
    for c in code:
        for o in c.get('outputs', []):
            t = ''.join(o.get('text', '')) + ''.join(o.get('data', {}).get('text/plain', ''))
            if m := leak.search(t): leaks.append(f"{f.name}: {t[max(0, m.start() - 30):m.end() + 30]!r}")
            if bar.search(t): bars.append(f"{f.name}: {''.join(c['source'])[:60]!r}")
    draws = any(draws_re.search(''.join(c['source'])) for c in code)
    pics = sum(any(k.startswith('image/') for o in c.get('outputs', []) for k in o.get('data', {})) for c in code)
    if draws and not pics: bad.append(f.name)
size = sum(f.stat().st_size for f in nbs.glob('*.ipynb'))
if leaks: print("saved outputs show this machine's paths (run python .ci/execute.py --scrub-only):\n  " + '\n  '.join(leaks))
if bars: print("saved outputs hold a progress bar's text (run the cell under learn.no_bar()):\n  " + '\n  '.join(bars))
if bad: print(f"notebooks that draw figures but carry no saved picture: {', '.join(bad)} (run python .ci/execute.py)")
if size > 20 * 2**20: print(f"nbs/ holds {size / 2**20:.1f} MB of notebooks, over 20 MB: save figures at a lower dpi")
print(f"saved outputs: {len(list(nbs.glob('*.ipynb'))) - len(bad)} notebooks fine, nbs/ {size / 2**20:.1f} MB")
sys.exit(1 if bad or leaks or bars or size > 20 * 2**20 else 0)
