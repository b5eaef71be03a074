"""What the node files share; no node lives here (the nodes are ``nodes/nodes_<family>.py``).

comfy_model     the MicroCinema network as a ComfyUI MODEL (BaseModel + ModelPatcher), the keyframe's conditioning key
prior_patch     the Appearance Noise Prior as a patched ``model_sampling.noise_scaling``; the keyframe in a CONDITIONING
ksampler        one call of ComfyUI's own sampling, exactly as the stock KSampler makes it
validators      checks, widget ranges and tooltips that several node families share (gamma, lambda, the VAE, sizes)
minilm_clip     all-MiniLM-L6-v2 as a ComfyUI CLIP (the toy models' text encoder)
model_files     the ``models/microcinema`` folder, the pack's own model folders, naming a wrong file
example_inputs  the shipped example keyframes copied into ComfyUI's input folder
"""
