"""Transfer to other datasets (paper Sec. 5.2: Tables 4-7, Fig. 9).

Modules: `datasets` (Caltech-101/256 and VOC 2012 listed by torchvision, decoded as for pretraining),
`features` (frozen per-layer features and their cache), `linear` (softmax and linear SVM solvers),
`protocol` (folds, scores, tables and the paper's claims) and `scratch` (the non-pretrained baseline
trained by the train stage's LightningModule). The experiment that puts them together is
`zfnet.experiments.transfer`, its figures `zfnet.viz.transfer`; the stage is pipelines/transfer.py.
"""
