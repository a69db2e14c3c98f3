"""The distillation machinery shared by models, losses and tools: feature hooks declared by module path, the clip
runner (sliding window or recurrent), and building and checking the frozen teacher."""
