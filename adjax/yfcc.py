"""YFCC100M's metadata and a user's image features to the tag task's ``.npz`` (``experiments/yfcc_prepare.py``).

See that entrypoint's docstring for the formats and the paper's sampling.
"""

import bz2
import collections
import html
import re
import urllib.parse

import numpy as np

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
