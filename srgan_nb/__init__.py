"srgan_nb: the SRGAN paper taught step by step, exported as a 4x super-resolution library."
__version__ = "0.1.0"

def __getattr__(name):
    "`srgan_nb.upscale(image)`, the one call most users need, imported on first use (so `import srgan_nb` stays light)."
    if name == 'upscale':
        from .inference import upscale
        return upscale
    raise AttributeError(f"module 'srgan_nb' has no attribute {name!r}")
