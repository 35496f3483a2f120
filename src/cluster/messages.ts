/** The IPC messages between the primary and its workers. */
export const SHUTDOWN_MESSAGE = 'bullpen:shutdown';
