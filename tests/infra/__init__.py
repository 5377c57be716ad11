"""Tests of the CDK app. Silences jsii's Node end-of-life banner before aws_cdk loads."""

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
