"""Data preparation: LR trees from GT (``lr_tree``), LMDBs and meta_info files (``lmdb_writer``), the demo set.

Every writer checks its inputs and output places first, writes under a temporary name and renames when complete,
so a failed or interrupted run leaves nothing a rerun trips over. Not auto-imported by ``stdsr.data`` (nothing
here registers with BasicSR).
"""
