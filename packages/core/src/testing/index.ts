// @parley/core/testing: fakes and fast-check helpers for negotiation tests.
export {};
