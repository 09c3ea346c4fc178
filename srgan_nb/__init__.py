"srgan_nb: the SRGAN paper taught step by step, exported as a 4x super-resolution library."
__version__ = "0.1.0"

from .upscale import upscale  # `srgan_nb.upscale(image)`: the one call most users need
