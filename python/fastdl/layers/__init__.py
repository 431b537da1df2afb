"""Keras-compatible layers, by family as Keras 3 lays them out.

``Layer`` (layer.py) is the base of all, built-in or written by a user; see its
module docstring for how a layer is called eagerly, under a GradientTape and
on symbolic tensors.
"""
from .activations import Activation, ReLU, Softmax
from .activations_extra import ELU, LeakyReLU, PReLU
from .convolutional import (Conv1D, Conv2D, Conv2DTranspose, Convolution1D, Convolution2D,
                            Convolution2DTranspose, DepthwiseConv2D, SeparableConv2D,
                            SeparableConvolution2D)
from .core import Dense, Lambda, OpLambda
from .embedding import Embedding, Masking
from .layer import Input, InputLayer, Layer
from .merging import (Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract, add,
                      average, concatenate, maximum, minimum, multiply, subtract)
from .pooling import (AveragePooling2D, AvgPool2D, GlobalAveragePooling2D, GlobalAvgPool2D,
                      MaxPool2D, MaxPooling2D)
from .normalization import (BatchNormalization, GroupNormalization, LayerNormalization,
                            UnitNormalization)
from .noise import (ActivityRegularization, GaussianDropout, GaussianNoise, SpatialDropout1D,
                    SpatialDropout2D)
from .pooling1d import (AveragePooling1D, AvgPool1D, GlobalAveragePooling1D, GlobalAvgPool1D,
                        GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPooling1D, GlobalMaxPooling2D,
                        MaxPool1D, MaxPooling1D)
from .regularization import Dropout
from .reshaping import Flatten, Reshape
from .reshaping2 import (Cropping2D, Permute, RepeatVector, UpSampling1D, UpSampling2D,
                         ZeroPadding2D)
from .rnn import GRU, LSTM, SimpleRNN
from .wrappers import Bidirectional, TimeDistributed

__all__ = ["Layer", "InputLayer", "Input", "Dense", "Lambda", "Conv2D", "MaxPooling2D",
           "MaxPool2D", "AveragePooling2D", "AvgPool2D", "GlobalAveragePooling2D",
           "GlobalAvgPool2D", "Flatten", "Reshape", "Dropout", "Activation", "ReLU", "Softmax",
           "SimpleRNN", "LSTM", "GRU", "Add", "Subtract", "Multiply", "Average", "Maximum",
           "Minimum", "Concatenate", "add", "subtract", "multiply", "average", "maximum",
           "minimum", "concatenate", "get", "serialize", "deserialize",
           "MaxPooling1D", "MaxPool1D", "AveragePooling1D", "AvgPool1D", "GlobalMaxPooling1D",
           "GlobalMaxPool1D", "GlobalMaxPooling2D", "GlobalMaxPool2D", "GlobalAveragePooling1D",
           "GlobalAvgPool1D", "RepeatVector", "Permute", "UpSampling1D", "UpSampling2D",
           "ZeroPadding2D", "Cropping2D", "LeakyReLU", "PReLU", "ELU", "SpatialDropout1D",
           "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "ActivityRegularization",
           "Conv1D", "Convolution1D", "Convolution2D", "Conv2DTranspose", "Convolution2DTranspose",
           "DepthwiseConv2D", "SeparableConv2D", "SeparableConvolution2D",
           "BatchNormalization", "LayerNormalization", "GroupNormalization",
           "UnitNormalization", "Embedding", "Masking", "Bidirectional", "TimeDistributed"]

_CLASSES = {c.__name__: c for c in (
    InputLayer, Dense, Lambda, OpLambda, Conv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D,
    Flatten, Reshape, Dropout, Activation, ReLU, Softmax, SimpleRNN, LSTM, GRU, Add, Subtract,
    Multiply, Average, Maximum, Minimum, Concatenate,
    MaxPooling1D, AveragePooling1D, GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalAveragePooling1D,
    RepeatVector, Permute, UpSampling1D, UpSampling2D, ZeroPadding2D, Cropping2D, LeakyReLU, PReLU,
    ELU, SpatialDropout1D, SpatialDropout2D, GaussianNoise, GaussianDropout,
    ActivityRegularization, Conv1D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D,
    BatchNormalization, LayerNormalization, GroupNormalization, UnitNormalization,
    Embedding, Masking, Bidirectional, TimeDistributed)}


def serialize(layer):
    from ..saving import serialize_object
    return serialize_object(layer)


def deserialize(config, custom_objects=None):
    from ..saving import deserialize_object
    return deserialize_object(config, custom_objects, kind="layer")


get = deserialize
