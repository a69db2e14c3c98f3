"""Render the embedded demo VSR data set from photographs shipped inside scikit-image (no download).

The command line over :mod:`stdsr.data.preparation.demo_clips` (layout, trajectories and determinism are
described there). Output (``--scale 4``)::

    <root>/{train,test}/{GT,BIx4}/<photo>_<k:03d>/<frame:08d>.png
    <root>/meta_info_demo_{train,test}.txt      # '<clip> <num_frames> (h,w,c)' of the GT frames
    <root>/train_GT.lmdb, <root>/train_BIx4.lmdb  # only with --lmdb; keys '<clip>/<frame:08d>'
"""
import sys

from stdsr.tools.make_demo_clips import main

if __name__ == '__main__':
    main()
