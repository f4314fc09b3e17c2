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
--config.data_file=OUT`` with ``experiments/configs/tags.py``.
"""

import bz2
import collections
import html
import re
import sys
import urllib.parse

from absl import app
from absl import flags
import numpy as np

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

# Column of (photo id, title, description, user tags) by the number of columns of a line.
LAYOUTS = {25: (1, 8, 9, 10), 23: (0, 6, 7, 8)}


class PrepareError(Exception):
  """Bad input: says which file, line or id."""


def _text(field: str) -> str:
  return html.unescape(re.sub(r'<[^>]*>', ' ', urllib.parse.unquote_plus(field)))


def words(text: str) -> list[str]:
  return re.findall(r'[a-z0-9]+', text.lower())


def read_metadata(path: str, wanted: set[str]) -> dict[str, tuple[list[str], list[str]]]:
  """``{photo id: (words of title and description, user tags)}`` of the wanted photos that have text."""
  opener = bz2.open if path.endswith('.bz2') else open
  found, seen = {}, set()
  with opener(path, 'rt', encoding='utf-8') as f:
    for number, line in enumerate(f, 1):
      columns = line.rstrip('\n').split('\t')
      if len(columns) not in LAYOUTS:
        raise PrepareError(
          f'{path}, line {number}: {len(columns)} tab-separated columns; yfcc100m_dataset lines have 25 (with a row '
          'id) or 23'
        )
      id_col, title_col, description_col, tags_col = LAYOUTS[len(columns)]
      photo = columns[id_col]
      if photo not in wanted:
        continue
      seen.add(photo)
      text = words(_text(columns[title_col]) + ' ' + _text(columns[description_col]))
      tags = [urllib.parse.unquote_plus(t).lower() for t in columns[tags_col].split(',') if t]
      if text:
        found[photo] = (text, tags)
  missing = sorted(wanted - seen)
  if missing:
    raise PrepareError(f'{len(missing)} photo ids of --feature_ids are not in {path} (first: {missing[0]})')
  if not found:
    raise PrepareError(f'none of the {len(wanted)} photos with features has a title or description in {path}')
  return found


def tag_vocabulary(photos: dict, kind: str, num_tags: int, min_count: int, rng: np.random.Generator) -> list[str]:
  counts = collections.Counter(t for _, tags in photos.values() for t in set(tags))
  if kind == 'popular':
    chosen = [t for t, _ in sorted(counts.items(), key=lambda tc: (-tc[1], tc[0]))[:num_tags]]
  else:
    pool = sorted(t for t, c in counts.items() if c >= min_count)
    if len(pool) < num_tags:
      raise PrepareError(f'only {len(pool)} tags are used {min_count} times or more; num_tags={num_tags} are asked')
    chosen = sorted(rng.choice(pool, num_tags, replace=False).tolist())
  if len(chosen) < num_tags:
    raise PrepareError(f'the photos with text use {len(chosen)} distinct tags; num_tags={num_tags} are asked')
  return chosen


def token_ids(texts: list[list[str]], vocabulary: dict[str, int], max_words: int) -> np.ndarray:
  out = np.zeros((len(texts), max_words), np.int32)
  for i, text in enumerate(texts):
    ids = [vocabulary.get(w, 1) for w in text[:max_words]]
    out[i, : len(ids)] = ids
  return out


def prepare(metadata: str, features_path: str, ids_path: str, out: str, **options) -> dict:
  """Writes the ``.npz``; returns counts of what was kept."""
  o = {'tags': 'popular', 'num_tags': 200, 'min_tag_count': 50, 'n_train': 20000, 'n_test': 2000, 'max_words': 30,
       'vocab_size': 20000, 'seed': 0, **options}  # fmt: skip
  features = np.load(features_path)
  with open(ids_path) as f:
    ids = [line.strip() for line in f if line.strip()]
  if features.ndim != 2 or features.shape[0] != len(ids):
    raise PrepareError(
      f'--features {features_path} has shape {features.shape}; it needs [M, D] with M = {len(ids)}, one row per id '
      f'of {ids_path}'
    )
  row = {photo: i for i, photo in enumerate(ids)}
  photos = read_metadata(metadata, set(ids))
  rng = np.random.default_rng(o['seed'])
  tags = tag_vocabulary(photos, o['tags'], o['num_tags'], o['min_tag_count'], rng)
  tag_index = {t: i for i, t in enumerate(tags)}
  kept = sorted(p for p, (_, t) in photos.items() if any(x in tag_index for x in t))
  needed = o['n_train'] + o['n_test']
  if len(kept) < needed:
    raise PrepareError(f'{len(kept)} photos have text and one of the tags; n_train + n_test = {needed} are asked')
  drawn = [kept[i] for i in rng.permutation(len(kept))[:needed]]
  train, test = drawn[: o['n_train']], drawn[o['n_train'] :]
  in_train = {t for p in train for t in photos[p][1]}
  absent = [t for t in tags if t not in in_train]
  if absent:  # adjax refuses a tag no training example has: it could not be learned
    raise PrepareError(
      f'{len(absent)} of the tags are on none of the {len(train)} training photos drawn (first: {absent[0]!r}); '
      'raise --min_tag_count (random tags) or --n_train'
    )
  counts = collections.Counter(w for p in train for w in photos[p][0])
  words_kept = [w for w, _ in sorted(counts.items(), key=lambda wc: (-wc[1], wc[0]))[: o['vocab_size']]]
  vocabulary = {w: i + 2 for i, w in enumerate(words_kept)}

  def split(group):
    y = np.zeros((len(group), len(tags)), np.int8)
    for i, p in enumerate(group):
      for t in photos[p][1]:
        if t in tag_index:
          y[i, tag_index[t]] = 1
    texts = [photos[p][0] for p in group]
    return features[[row[p] for p in group]].astype(np.float32), token_ids(texts, vocabulary, o['max_words']), y

  x_train, xp_train, y_train = split(train)
  x_test, xp_test, y_test = split(test)
  np.savez(out, x_train=x_train, xp_train=xp_train, y_train=y_train, x_test=x_test, xp_test=xp_test, y_test=y_test,
           tag_names=np.array(tags), vocabulary=np.array(['<pad>', '<other>', *words_kept]))  # fmt: skip
  return {'photos_with_text': len(photos), 'with_a_tag': len(kept), 'train': len(train), 'test': len(test)}


def main(argv):
  del argv
  missing = [f'--{n}' for n, v in (('metadata', _METADATA), ('features', _FEATURES), ('feature_ids', _FEATURE_IDS),
                                    ('out', _OUT)) if not v.value]  # fmt: skip
  if missing:
    sys.exit(f'adjax: {", ".join(missing)} required')
  try:
    counts = prepare(
      _METADATA.value, _FEATURES.value, _FEATURE_IDS.value, _OUT.value, tags=_TAGS.value, num_tags=_NUM_TAGS.value,
      min_tag_count=_MIN_TAG_COUNT.value, n_train=_N_TRAIN.value, n_test=_N_TEST.value, max_words=_MAX_WORDS.value,
      vocab_size=_VOCAB_SIZE.value, seed=_SEED.value,
    )  # fmt: skip
  except (PrepareError, OSError, ValueError) as e:
    sys.exit(f'adjax: {e}')
  print(f'wrote {_OUT.value}: {counts}')


if __name__ == '__main__':
  app.run(main)
