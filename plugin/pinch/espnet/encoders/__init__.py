"""espnet2 encoders pinch registers in espnet2's encoder choices."""
