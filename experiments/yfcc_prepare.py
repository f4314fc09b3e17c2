r"""The paper's tag data from YFCC100M: metadata and your image features to the tag task's ``.npz``.

  python -m experiments.yfcc_prepare --metadata=yfcc100m_dataset.bz2 --features=fc7.npy --feature_ids=ids.txt \
      --out=yfcc_popular.npz [--tags=popular|random] [--num_tags=200] [--n_train=20000] [--n_test=2000]

``--metadata``: the tab-separated ``yfcc100m_dataset`` file (plain or
``.bz2``), one photo per line, in either public layout: 25 columns (row id,
photo id, …, title in column 8, description 9, user tags 10) or the original
23 (photo id, …, title 6, description 7, user tags 8); title and
description are URL-encoded (``+`` for spaces), tags comma-separated.
The original release comes in parts (``yfcc100m_dataset-0.bz2`` …): join
them (``cat yfcc100m_dataset-*.bz2 > yfcc100m_dataset.bz2``; bz2 reads the
concatenated streams). ``--features``: an ``.npy`` ``[M, D]`` of image
features you extracted (the paper: VGGNet), row ``i`` for the ``i``-th photo
id of ``--feature_ids`` (a text file, one id per line: the Flickr photo
ids, not the photo hashes that image mirrors use as file names). A pass over
the whole file takes hours; a line of another layout stops it, naming the
line. Words are ASCII letters and digits. Train with
``--config.dataset=npz --config.data_file=OUT --config.n_train=18000
--config.n_val=2000`` (``tags.py`` draws 2,000 / 500 for the stand-in).

As the paper: photos with features and a title or description are kept;
the tag vocabulary is the ``num_tags`` most frequent user tags (``popular``)
or ``num_tags`` tags drawn at random among those used at least
``--min_tag_count`` times (``random``); photos with none of those tags are
dropped; ``n_train`` and ``n_test`` photos are drawn at random (``--seed``).
Text (title and description, lower-cased, words of letters and digits) is
cut to ``--max_words`` token ids over the ``--vocab_size`` most frequent
training words (0 = padding, 1 = any other word). Writes ``x_train`` (features),
``xp_train`` (token ids), ``y_train`` (multi-hot tags) and the same for test,
plus ``tag_names`` and ``vocabulary``: ``--config.dataset=npz
--config.data_file=OUT`` with ``experiments/configs/tags.py`` (which sets
``multi_label=True``: the tags are multi-hot).
"""

import sys

from absl import app
from absl import flags

from adjax import yfcc

_METADATA = flags.DEFINE_string('metadata', None, 'The yfcc100m_dataset file (tab-separated; .bz2 allowed).')
_FEATURES = flags.DEFINE_string('features', None, '.npy [M, D] image features, one row per --feature_ids line.')
_FEATURE_IDS = flags.DEFINE_string('feature_ids', None, 'Text file: the photo id of each features row.')
_OUT = flags.DEFINE_string('out', None, 'The .npz to write.')
_TAGS = flags.DEFINE_enum('tags', 'popular', ['popular', 'random'], 'The tag vocabulary: most frequent, or random.')
_NUM_TAGS = flags.DEFINE_integer('num_tags', 200, 'Tags in the vocabulary.')
_MIN_TAG_COUNT = flags.DEFINE_integer('min_tag_count', 50, 'random: tags used at least this often are candidates.')
_N_TRAIN = flags.DEFINE_integer('n_train', 20000, 'Training photos.')
_N_TEST = flags.DEFINE_integer('n_test', 2000, 'Test photos.')
_MAX_WORDS = flags.DEFINE_integer('max_words', 30, 'Token ids per photo (longer text is cut).')
_VOCAB_SIZE = flags.DEFINE_integer('vocab_size', 20000, 'Word ids: the most frequent training words, plus 0 and 1.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the random tags and the photo draw.')


def main(argv):
  del argv
  missing = [f'--{n}' for n, v in (('metadata', _METADATA), ('features', _FEATURES), ('feature_ids', _FEATURE_IDS),
                                    ('out', _OUT)) if not v.value]  # fmt: skip
  if missing:
    sys.exit(f'adjax: {", ".join(missing)} required')
  try:
    counts = yfcc.prepare(
      _METADATA.value, _FEATURES.value, _FEATURE_IDS.value, _OUT.value, tags=_TAGS.value, num_tags=_NUM_TAGS.value,
      min_tag_count=_MIN_TAG_COUNT.value, n_train=_N_TRAIN.value, n_test=_N_TEST.value, max_words=_MAX_WORDS.value,
      vocab_size=_VOCAB_SIZE.value, seed=_SEED.value,
    )  # fmt: skip
  except (yfcc.PrepareError, OSError, ValueError) as e:
    sys.exit(f'adjax: {e}')
  print(f'wrote {_OUT.value}: {counts}')


if __name__ == '__main__':
  app.run(main)
