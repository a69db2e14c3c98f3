"""stdsr: Space-Time Distillation for compact video super-resolution, as a BasicSR extension.

Importing the package registers its archs, datasets, losses and models into BasicSR's registries, and its
metrics (``psnr_y``, ``ssim_y``) into ``METRIC_REGISTRY``.
"""
# flake8: noqa
from stdsr import compat  # must precede the first `import basicsr`
from stdsr.archs import *
from stdsr.data import *
from stdsr.losses import *
from stdsr.metrics import vsr_metrics
from stdsr.models import *
from stdsr.version import __version__
