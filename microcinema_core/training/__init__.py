"""Training MicroCinema (paper sec. 3.3 and 4, appendix tab. 3).

Two entry points, split so the trainer needs only ``microcinema_core``:

1. ``python -m microcinema_core.training.encode_cache`` reads videos + captions, samples clips
   (:mod:`.clips`), filters them (:mod:`.filters`), encodes them with the frozen SD2.1 VAE and OpenCLIP
   text encoder through ComfyUI's own loaders and writes a sharded safetensors cache (:mod:`.caching`).
   It is the only module of ``microcinema_core`` that imports ``comfy`` (lazily).
2. ``python -m microcinema_core.train --config configs/train_base.json`` trains from that cache:
   objective (:mod:`.objective`, eq. 3-5), optimiser (:mod:`.optim`), DDP/FSDP (:mod:`.distributed`),
   checkpoints (:mod:`.checkpointing`), progress (:mod:`.progress`), the loop (:mod:`.trainer`).

Modules: ``train_config`` (settings), ``captions`` (CSV readers), ``video_io`` (decoding), ``clips``
(clip sampling, crop/resize), ``filters`` (motion, caption-image score), ``caching`` (cache writer and
reader), ``data_order`` (resumable, rank-sharded sample order), ``objective``, ``optim``, ``ema``,
``distributed``, ``checkpointing``, ``progress``, ``samples`` (sample latents at intervals), ``summary``
(skip/filter counts), ``trainer``, ``cli``. How to run it: ``docs/training.md``.
"""
