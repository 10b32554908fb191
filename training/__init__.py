"""Training and evaluation of refocus's own depth network (Eigen et al. 2014) on NYU Depth v2.

Run the scripts from the repository root: ``python training/train.py``,
``python training/evaluate.py``, ``python training/setup_data.py``. Inference (``refocus``)
never imports this package.
"""
