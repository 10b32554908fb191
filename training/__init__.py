"""Training and evaluation of refocus's own depth network (Eigen et al. 2014) on NYU Depth v2.

Installed with the project; run its commands as modules: ``python -m training.setup_data``,
``python -m training.train``, ``python -m training.evaluate`` (``--help`` for each). Inference
(``refocus``) never imports this package.
"""
