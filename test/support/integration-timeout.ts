// Integration tests start processes and wait on real controllers: give them minutes, not 5 s.
import { jest } from '@jest/globals';

jest.setTimeout(180_000);
