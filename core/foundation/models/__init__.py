"""Models: names.py lists the registry's names (torch-free); registry.py builds a model by name;
resnet.py is torchvision's ResNet-18 for small images; channels.py removes output channels with
Torch-Pruning's dependency graph (and rebuilds a saved pruned model)."""
