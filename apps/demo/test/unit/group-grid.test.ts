import { describe, expect, it } from 'vitest';
import { gridColumns } from '../../src/group-call-view.js';

// The group call's grid: our preview and up to five other members' tiles, laid out so that no
// tile is alone on a row wider than it needs (2 columns up to 4 tiles, 3 up to 6).

describe('gridColumns', () => {
  it.each([
    [1, 1],
    [2, 2],
    [3, 2],
    [4, 2],
    [5, 3],
    [6, 3],
  ])('lays %i tiles out in %i columns', (tiles, columns) => {
    expect(gridColumns(tiles)).toBe(columns);
  });

  it('fits every group size (2 to 6) in at most 2 rows', () => {
    for (let tiles = 2; tiles <= 6; tiles += 1) expect(Math.ceil(tiles / gridColumns(tiles))).toBeLessThanOrEqual(2);
  });
});
