"""``python -m pinch.espnet.bin.asr_inference``: espnet2's asr_inference with pinch's encoders.

Only models that use a pinch encoder (``encoder: hf_ssl``) need this; baked models of
espnet2's own encoders decode with plain ``espnet2.bin.asr_inference``.
"""
import pinch.espnet.tasks.asr  # noqa: F401  (registers the encoders)
from espnet2.bin.asr_inference import main

if __name__ == "__main__":
    main()
