"""Clips per second read by PairedClipDataset from PNG folders and from LMDBs of the same frames.

Examples::

    python scripts/data_preparation/make_demo_clips.py --root datasets/demo --lmdb
    python scripts/bench_io.py --root datasets/demo
    python scripts/bench_io.py --root datasets/demo --compress-levels 0 1 9 --json io.json

Both backends read the same samples, (clip, per-sample seed) pairs drawn as training draws them
(``ResumableSampler`` + ``SeededSampleDataset``), so crops, flips and frame windows are identical; the script
checks that the tensors are bit-identical before it times anything. Everything runs in this process, one sample
after another (no DataLoader workers), after one untimed pass that warms the OS page cache: the numbers are for a
warm cache, i.e. CPU cost, not disk speed. Backends alternate within every repeat so machine load hits both alike.

A per-frame breakdown separates getting the encoded bytes (file open/read vs LMDB get) from PNG decoding, which
tells whether a faster store can help at all. ``--compress-levels`` packs extra LMDBs at other PNG compression
levels (the LMDB writer's ``compress_level``) in a temporary folder and times them too.
"""
import sys

from stdsr.tools.bench_io import main

if __name__ == '__main__':
    main()
