"""Models: names.py lists the registry's entries (torch-free); registry.py builds a model by name;
resnet.py is torchvision's ResNet-18 for small images, torchvision_models.py the other torchvision
networks adapted to small images (torchvision's own stem at real size), vit.py the small vision
transformer; channels.py removes output channels with Torch-Pruning's dependency graph (and rebuilds
a saved pruned model); memory.py estimates what training needs before it starts; weights_file.py
reads a user's weights file (restricted loader only); pretrained.py starts from torchvision's ImageNet weights."""
