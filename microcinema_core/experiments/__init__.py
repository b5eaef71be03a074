"""The toy experiments: the drivers that make, train, probe and measure the toy bundle on the toy world.

``bundle`` (the one-command retrain of the shipped files), ``encoding`` (the toy latent cache), ``reversal``
(time-reversed captions in the cache), ``probe`` / ``validate`` / ``evaluate`` (checks and the held-out
measurements), ``ablations`` (tab. 2 at toy scale), ``x0_sheet`` and ``customisation_sheet`` (figures);
``toy_files`` names the bundle's files and size. They stand on the layers below (``toyworld`` the data world,
``training``, ``vae``, ``eval``, ``diffusion``, ...); nothing below imports them.
"""
