/**
 * An ordered set of numbers or fixed-width strings: a B+ tree whose leaves hold sorted key arrays.
 * Insert, delete, `has`, `min` and `ceil` (smallest key ≥ k) are O(log n). Leaves that become empty
 * are unlinked at once; other underfull nodes are tolerated (no merging), so the height is bounded
 * by the largest size the set ever had.
 */

const LEAF_MAX = 128;
const INNER_MAX = 64;

class BTreeNode<K> {
  /** Leaf: the keys. Inner node: separators; keys[i] is the smallest key allowed in children[i + 1]. */
  keys: K[];
  /** Null for leaves. */
  children: BTreeNode<K>[] | null;

  constructor(keys: K[], children: BTreeNode<K>[] | null) {
    this.keys = keys;
    this.children = children;
  }
}

/** First index whose key is ≥ key. */
function lowerBound<K>(keys: K[], key: K): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((keys[mid] as K) < key) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** First index whose key is > key (the child to descend into). */
function upperBound<K>(keys: K[], key: K): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (key < (keys[mid] as K)) high = mid;
    else low = mid + 1;
  }
  return low;
}

export class OrderedSet<K extends number | string> {
  private root: BTreeNode<K> = new BTreeNode<K>([], null);
  private count = 0;
  /** Smallest and largest key, cached: FirstMatch asks for the minimum at every allocation. */
  private smallest: K | undefined;
  private largest: K | undefined;
  /** Scratch path of the last descent (the set is not re-entrant). */
  private readonly pathNodes: BTreeNode<K>[] = [];
  private readonly pathIndexes: number[] = [];

  get size(): number {
    return this.count;
  }

  /** Builds a set from keys that are strictly ascending. */
  static fromSorted<K extends number | string>(keys: readonly K[]): OrderedSet<K> {
    const set = new OrderedSet<K>();
    if (keys.length === 0) return set;
    const fill = (LEAF_MAX * 3) >>> 2;
    let level: BTreeNode<K>[] = [];
    let firstKeys: K[] = [];
    for (let i = 0; i < keys.length; i += fill) {
      level.push(new BTreeNode<K>(keys.slice(i, i + fill), null));
      firstKeys.push(keys[i] as K);
    }
    const fanout = (INNER_MAX * 3) >>> 2;
    while (level.length > 1) {
      const nextLevel: BTreeNode<K>[] = [];
      const nextFirstKeys: K[] = [];
      for (let i = 0; i < level.length; i += fanout) {
        nextLevel.push(new BTreeNode<K>(firstKeys.slice(i + 1, i + fanout), level.slice(i, i + fanout)));
        nextFirstKeys.push(firstKeys[i] as K);
      }
      level = nextLevel;
      firstKeys = nextFirstKeys;
    }
    set.root = level[0] as BTreeNode<K>;
    set.count = keys.length;
    set.smallest = keys[0];
    set.largest = keys[keys.length - 1];
    return set;
  }

  has(key: K): boolean {
    let node = this.root;
    while (node.children !== null) node = node.children[upperBound(node.keys, key)] as BTreeNode<K>;
    const keys = node.keys;
    const index = lowerBound(keys, key);
    return index < keys.length && keys[index] === key;
  }

  min(): K | undefined {
    return this.smallest;
  }

  max(): K | undefined {
    return this.largest;
  }

  private findMin(): K | undefined {
    let node = this.root;
    while (node.children !== null) node = node.children[0] as BTreeNode<K>;
    return node.keys[0];
  }

  private findMax(): K | undefined {
    let node = this.root;
    while (node.children !== null) node = node.children[node.children.length - 1] as BTreeNode<K>;
    return node.keys[node.keys.length - 1];
  }

  /** The smallest key ≥ `key`. */
  ceil(key: K): K | undefined {
    let node = this.root;
    let depth = 0;
    const nodes = this.pathNodes;
    const indexes = this.pathIndexes;
    while (node.children !== null) {
      const index = upperBound(node.keys, key);
      nodes[depth] = node;
      indexes[depth] = index;
      depth++;
      node = node.children[index] as BTreeNode<K>;
    }
    const index = lowerBound(node.keys, key);
    if (index < node.keys.length) return node.keys[index];
    // Every key of this leaf is smaller: the answer is the minimum of the next subtree to the right.
    while (depth > 0) {
      depth--;
      const parent = nodes[depth] as BTreeNode<K>;
      const children = parent.children as BTreeNode<K>[];
      const next = (indexes[depth] as number) + 1;
      if (next < children.length) {
        let subtree = children[next] as BTreeNode<K>;
        while (subtree.children !== null) subtree = subtree.children[0] as BTreeNode<K>;
        return subtree.keys[0];
      }
    }
    return undefined;
  }

  /** Adds `key`; false if it was there. */
  add(key: K): boolean {
    let node = this.root;
    let depth = 0;
    const nodes = this.pathNodes;
    const indexes = this.pathIndexes;
    while (node.children !== null) {
      const index = upperBound(node.keys, key);
      nodes[depth] = node;
      indexes[depth] = index;
      depth++;
      node = node.children[index] as BTreeNode<K>;
    }
    const keys = node.keys;
    const index = lowerBound(keys, key);
    if (index < keys.length && keys[index] === key) return false;
    if (index === keys.length) keys.push(key);
    else keys.splice(index, 0, key);
    this.count++;
    if (this.smallest === undefined || key < this.smallest) this.smallest = key;
    if (this.largest === undefined || key > this.largest) this.largest = key;
    if (keys.length <= LEAF_MAX) return true;

    // Split the leaf, then every inner node that overflows on the way up.
    let right = new BTreeNode<K>(keys.splice(keys.length >>> 1), null);
    let separator = right.keys[0] as K;
    let left = node;
    while (depth > 0) {
      depth--;
      const parent = nodes[depth] as BTreeNode<K>;
      const at = indexes[depth] as number;
      const parentChildren = parent.children as BTreeNode<K>[];
      parent.keys.splice(at, 0, separator);
      parentChildren.splice(at + 1, 0, right);
      if (parentChildren.length <= INNER_MAX) return true;
      const middle = parent.keys.length >>> 1;
      const upSeparator = parent.keys[middle] as K;
      const rightKeys = parent.keys.splice(middle + 1);
      parent.keys.pop();
      right = new BTreeNode<K>(rightKeys, parentChildren.splice(middle + 1));
      separator = upSeparator;
      left = parent;
    }
    this.root = new BTreeNode<K>([separator], [left, right]);
    return true;
  }

  /** Removes `key`; false if it was not there. */
  delete(key: K): boolean {
    let node = this.root;
    let depth = 0;
    const nodes = this.pathNodes;
    const indexes = this.pathIndexes;
    while (node.children !== null) {
      const index = upperBound(node.keys, key);
      nodes[depth] = node;
      indexes[depth] = index;
      depth++;
      node = node.children[index] as BTreeNode<K>;
    }
    const keys = node.keys;
    const index = lowerBound(keys, key);
    if (index >= keys.length || keys[index] !== key) return false;
    if (index === 0) keys.shift();
    else if (index === keys.length - 1) keys.pop();
    else keys.splice(index, 1);
    this.count--;
    if (keys.length > 0 || depth === 0) {
      this.afterDelete(key);
      return true;
    }

    // Unlink the empty leaf and every inner node that loses its last child.
    while (depth > 0) {
      depth--;
      const parent = nodes[depth] as BTreeNode<K>;
      const at = indexes[depth] as number;
      const children = parent.children as BTreeNode<K>[];
      children.splice(at, 1);
      parent.keys.splice(at === 0 ? 0 : at - 1, 1);
      if (children.length > 0) break;
    }
    let root = this.root;
    while (root.children !== null && root.children.length <= 1) {
      root = root.children[0] ?? new BTreeNode<K>([], null);
    }
    this.root = root;
    this.afterDelete(key);
    return true;
  }

  private afterDelete(key: K): void {
    if (this.count === 0) {
      this.smallest = undefined;
      this.largest = undefined;
      return;
    }
    if (key === this.smallest) this.smallest = this.findMin();
    if (key === this.largest) this.largest = this.findMax();
  }

  /** Smallest key (it must exist), removed. */
  popMin(): K | undefined {
    const key = this.min();
    if (key !== undefined) this.delete(key);
    return key;
  }

  forEach(visit: (key: K) => void): void {
    const walk = (node: BTreeNode<K>): void => {
      if (node.children === null) {
        for (const key of node.keys) visit(key);
        return;
      }
      for (const child of node.children) walk(child);
    };
    walk(this.root);
  }

  toArray(): K[] {
    const keys: K[] = [];
    this.forEach((key) => {
      keys.push(key);
    });
    return keys;
  }
}
