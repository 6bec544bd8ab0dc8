import { INestApplication, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import express from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import pinoHttp from 'pino-http';
import { serializeError } from '../common/logger';
import { requestIdFor } from '../common/http/request-id';
import { createMetricsRegistry } from '../common/http/metrics';
import { AppModule } from './app.module';
import { ADMIN_AUTH_SCHEME } from './common/api-docs';
import { SiloExceptionFilter } from './common/silo-exception.filter';
import { ControlPlaneDeps } from './core.module';

export type ControlPlaneApp = INestApplication;

/** Builds the control plane HTTP app (not listening). Body parsing is ours so the webhook route sees raw bytes. */
export async function createControlPlaneApp(deps: Omit<ControlPlaneDeps, 'metrics'> & { metrics?: ControlPlaneDeps['metrics'] }): Promise<ControlPlaneApp> {
  const { registry, httpDuration } = deps.metrics ? { registry: deps.metrics, httpDuration: null } : createMetricsRegistry('control-plane');
  const full: ControlPlaneDeps = { ...deps, metrics: registry };
  const app = await NestFactory.create(AppModule.forRoot(full), { bodyParser: false, logger: false, abortOnError: false });

  app.use(pinoHttp({
    logger: deps.logger,
    genReqId: (req: IncomingMessage, res: ServerResponse) => {
      const id = requestIdFor(req);
      res.setHeader('x-request-id', id);
      return id;
    },
    autoLogging: { ignore: (req) => req.url === '/health/live' || req.url === '/metrics' },
    serializers: { req: (req: { id: string; method: string; url: string }) => ({ id: req.id, method: req.method, url: req.url }), err: serializeError },
  }));
  if (httpDuration) {
    app.use((req: express.Request, res: express.Response, next: express.NextFunction) => {
      const end = httpDuration.startTimer({ method: req.method });
      res.on('finish', () => end({ route: (req.route?.path as string | undefined) ?? 'unmatched', status: String(res.statusCode) }));
      next();
    });
  }
  app.use('/webhooks/stripe', express.raw({ type: () => true, limit: deps.config.WEBHOOK_MAX_BODY_BYTES }));
  app.use(express.json({ limit: '256kb' }));
  app.useGlobalFilters(new SiloExceptionFilter(deps.logger));
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }));
  // No app.enableShutdownHooks(): each composition root handles signals (common/shutdown.ts) and calls close().

  const doc = new DocumentBuilder()
    .setTitle('Silo admin API')
    .setDescription('Control plane for database-per-tenant SaaS. All /v1 routes need `Authorization: Bearer <token>`: an operator\'s personal token (`silo_op_…`, its role\'s permissions; docs/operators.md) or the break-glass ADMIN_TOKEN. Errors are `{ "error": { "code", "message", "requestId" } }` with a stable `code`.')
    .setVersion('1')
    // Not a JWT: ADMIN_TOKEN is an opaque shared secret compared as-is (AdminAuthGuard). addBearerAuth() would say bearerFormat JWT.
    .addSecurity(ADMIN_AUTH_SCHEME, {
      type: 'http',
      scheme: 'bearer',
      description: "An operator's personal token (`silo_op_…`, from POST /v1/operators/{id}/tokens) or the control plane's break-glass ADMIN_TOKEN (`npm start` keeps a generated one in .silo/state.json as adminToken); opaque secrets, not JWTs, sent as `Authorization: Bearer <token>`.",
    })
    .build();
  SwaggerModule.setup('docs', app, () => SwaggerModule.createDocument(app, doc), { jsonDocumentUrl: 'docs/openapi.json' });
  return app;
}
