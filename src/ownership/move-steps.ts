/** The steps of a move, in order; named here alone so that the config can name one without the mover. */
export const MOVE_STEPS = ['begun', 'detached', 'shifted', 'attached', 'dropped', 'committed'] as const;

export type MoveStep = (typeof MOVE_STEPS)[number];
