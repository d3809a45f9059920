"""The density families, one module each: the VAE (MLP or convolutional), probabilistic PCA and
the Gaussian mixture, each a `DensityModel` with its `Family` object (pml_ops.density.family)."""
