"""WordNet 3.0 for ImageNet class sets: the shipped hypernym graph and its loader.

``imagenet_wordnet.tsv.gz`` holds every synset of the ImageNet class sets timm knows
(1k, 12k, 22k, 21k-goog, 21k-miil, 22k-ms) and all their hypernym ancestors, with
WordNet's licence notice; :mod:`.build` derives it from Debian's ``wordnet-base``
(``python -m classmap.analysis.wordnet.build``) and :mod:`.graph` loads it offline.
"""
