"""Peak memory of a frozen teacher's forward at the training crop, measured on a few windows and extrapolated.

During distillation the teacher runs under ``torch.no_grad`` on every window of every clip of the batch at
once (B x N windows of ``num_frame`` LR frames), and its F^SR (``conv_hr`` output) is kept for the losses.
This script measures the tensor peak of that forward for 1 and 2 windows (the teacher's weights are not
counted), takes the per-window slope and extrapolates to one training sample (N windows) and one GPU's batch.
On CPU the peak is the running sum of torch.profiler's allocation events; on CUDA ``max_memory_allocated``.
Weights are random (memory does not depend on them).

    python scripts/measure_teacher_memory.py -opt options/train/STD/zoo/train_VESPCN_STD_x4_Vimeo90K_EDVRL.yml
"""
import sys

from stdsr.tools.measure_teacher_memory import main

if __name__ == '__main__':
    sys.exit(main())
