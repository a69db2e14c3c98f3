"""Figures drawn by the commands (attention maps and SR crops of ``visualize_attention``)."""
