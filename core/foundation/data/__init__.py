"""Datasets: names.py says which exist and how a configuration names one (torch-free); datasets.py
loads them into uint8 tensors held in memory."""
