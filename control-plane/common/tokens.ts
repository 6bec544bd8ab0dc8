/** Injection tokens for what the composition root hands the Nest modules. */
export const CONFIG = Symbol('CONFIG');
export const DATA_SOURCE = Symbol('DATA_SOURCE');
export const KV_STORE = Symbol('KV_STORE');
export const LOGGER = Symbol('LOGGER');
export const METRICS = Symbol('METRICS');
export const SECRET_STORE = Symbol('SECRET_STORE');
export const PROVISIONING_DRIVER = Symbol('PROVISIONING_DRIVER');
export const DIRECTORY = Symbol('DIRECTORY');
export const CLOCK = Symbol('CLOCK');
