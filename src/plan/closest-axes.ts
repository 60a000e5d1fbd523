/**
 * Which world axis each voxel axis runs closest to: nibabel's `io_orientation` rule on an orthonormal affine,
 * shared by the readers' RAS reordering (src/data/orientation.ts) and the plan's `resample` step
 * (pipeline-geometry.ts), so both sides of a plan put a volume's axes in the same order.
 */

/**
 * For `cosine[axis][world]`, the |direction cosine| of each voxel axis along each world axis (3x3), the world axis
 * of every voxel axis: the pairs taken greedily by the largest cosine, each axis and world used once; on a tie the
 * first pair in axis-then-world order wins.
 */
export function closestWorldAxes(cosine: number[][]): number[] {
  const worldOf = [-1, -1, -1];
  const usedWorld = new Set<number>();
  for (let round = 0; round < 3; round++) {
    let best = { axis: -1, world: -1, value: -1 };
    for (let a = 0; a < 3; a++) {
      if (worldOf[a] >= 0) continue;
      for (let w = 0; w < 3; w++) {
        if (!usedWorld.has(w) && cosine[a][w] > best.value) best = { axis: a, world: w, value: cosine[a][w] };
      }
    }
    worldOf[best.axis] = best.world;
    usedWorld.add(best.world);
  }
  return worldOf;
}
