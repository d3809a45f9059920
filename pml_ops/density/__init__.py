"""Density models on MNIST (VAE, CVAE, PPCA, GMM) behind one interface (`DensityModel`)."""
