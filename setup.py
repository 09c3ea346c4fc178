"Packaging for srgan_nb: every setting is read from settings.ini (nbdev style)."
import shlex
from configparser import ConfigParser
from pathlib import Path

import setuptools

assert tuple(map(int, setuptools.__version__.split('.')[:2])) >= (36, 2), 'setuptools >= 36.2 is required'

config = ConfigParser(delimiters=['='])
config.read(Path(__file__).parent/'settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

expected = ('version description keywords author author_email license status min_python audience language '
            'git_url lib_name console_scripts requirements dev_requirements').split()
missing = [o for o in expected if o not in cfg]
if missing: raise KeyError(f'settings.ini is missing: {missing}')

statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable',
            '6 - Mature', '7 - Inactive']
# Build the Python classifiers from min_python instead of indexing a fixed list (which breaks on 3.11+).
major, minor = map(int, cfg['min_python'].split('.'))
py_versions = [f'{major}.{m}' for m in range(minor, 14)]

requirements = shlex.split(cfg.get('requirements', ''))
train_requirements = shlex.split(cfg.get('train_requirements', ''))
dev_requirements = shlex.split(cfg.get('dev_requirements', ''))

long_description = (Path(__file__).parent/'README.md').read_text(encoding='utf-8')

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    long_description=long_description,
    long_description_content_type='text/markdown',
    keywords=cfg['keywords'],
    author=cfg['author'],
    author_email=cfg['author_email'],
    license='Apache-2.0',
    url=cfg['git_url'],
    classifiers=[
        'Development Status :: ' + statuses[int(cfg['status']) - 1],
        'Intended Audience :: ' + cfg['audience'].title(),
        'Natural Language :: ' + cfg['language'].title(),
        'Topic :: Scientific/Engineering :: Image Processing',
    ] + [f'Programming Language :: Python :: {v}' for v in py_versions],
    packages=setuptools.find_packages(include=[cfg['lib_name'], cfg['lib_name'] + '.*']),
    package_data={cfg['lib_name']: ['weights/*.safetensors', 'weights/*.json']},
    include_package_data=True,
    install_requires=requirements,
    extras_require={'train': train_requirements, 'dev': train_requirements + dev_requirements},
    python_requires='>=' + cfg['min_python'],
    zip_safe=False,
    entry_points={
        'console_scripts': cfg['console_scripts'].split(),
        'nbdev': [f"{cfg['lib_name']}={cfg['lib_name']}._modidx:d"],
    },
)
