"""Training and test data: synthetic phantoms, digitally reconstructed radiographs from CT, annotation formats."""
